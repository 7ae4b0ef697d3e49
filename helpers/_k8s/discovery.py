"""Kinds, short names and plurals, read from the API server's discovery data as kubectl does.

The server lists every resource it serves: its kind, plural, singular, short names, and whether
it lives in a namespace. So ``deploy``, ``deployment``, ``deployments`` and
``deployments.apps`` all name the same thing, and so does anything the cluster adds later.

CLI: ``kubectl api-resources``
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from .._errors import CourseError, KubernetesError, ManifestRejected
from .client import request

# One request per group kind of data: the aggregated discovery documents (Kubernetes 1.30+).
_AGGREGATED = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
)


@dataclass(frozen=True)
class Resource:
    """One kind of object the API server serves, e.g. Deployment in apps/v1."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def names(self) -> set[str]:
        """Every word that names this resource: plural, singular, kind, short names, with group."""
        words = {self.plural, self.singular, self.kind.lower(), *self.short_names}
        if self.group:
            words |= {f"{w}.{self.group}" for w in (self.plural, self.singular)}
        return {w for w in words if w}

    def collection(self, namespace: str | None) -> str:
        """The path of this kind's collection: ``/apis/apps/v1/namespaces/NS/deployments``."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


_resources: list[Resource] = []  # core group first, then in the server's order (kubectl's priority)


def forget() -> None:
    """Drop what was discovered, so the next lookup asks the server again."""
    _resources.clear()


def _from_aggregated(document: dict[str, Any]) -> list[Resource]:
    found = []
    for group in document.get("items") or []:
        for version in group.get("versions") or []:
            for entry in version.get("resources") or []:
                kind = (entry.get("responseKind") or {}).get("kind")
                if not kind:
                    continue
                found.append(
                    Resource(
                        group=group.get("metadata", {}).get("name", ""),
                        version=version["version"],
                        kind=kind,
                        plural=entry["resource"],
                        singular=entry.get("singularResource") or kind.lower(),
                        short_names=tuple(entry.get("shortNames") or ()),
                        namespaced=entry.get("scope") == "Namespaced",
                    )
                )
    return found


def _from_legacy(group: str, version: str) -> list[Resource]:
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    listing = request("GET", path, what=f"discovering {path}")
    return [
        Resource(
            group=group,
            version=version,
            kind=entry["kind"],
            plural=entry["name"],
            singular=entry.get("singularName") or entry["kind"].lower(),
            short_names=tuple(entry.get("shortNames") or ()),
            namespaced=bool(entry.get("namespaced")),
        )
        for entry in listing.get("resources") or []
        if "/" not in entry["name"]  # subresources such as pods/log
    ]


def _discover() -> list[Resource]:
    from .client import api_errors, send

    found: list[Resource] = []
    for root in ("/api", "/apis"):
        with api_errors(f"discovering {root}"):
            document = send("GET", root, accept=_AGGREGATED).json()
        if document.get("kind") == "APIGroupDiscoveryList":
            found += _from_aggregated(document)
        elif root == "/api":  # servers before 1.30: one request per group version
            found += _from_legacy("", document["versions"][0])
        else:
            for group in document.get("groups") or []:
                found += _from_legacy(group["name"], group["preferredVersion"]["version"])
    return found


def resources() -> list[Resource]:
    """Every resource the server serves (asked once per kernel, again after ``forget``)."""
    if not _resources:
        _resources.extend(_discover())
    return _resources


def resolve(word: str) -> Resource:
    """The resource a kubectl-style word names: ``po``, ``pods``, ``deploy``, ``pvc``, ...

    The first group that serves it wins, core first, as with kubectl.
    """
    wanted = word.strip().lower()
    for attempt in ("cached", "fresh"):
        if attempt == "fresh":
            forget()  # something new may have been installed since
        for resource in resources():
            if wanted in resource.names():
                return resource
    known = sorted({n for r in resources() for n in (r.singular, *r.short_names)})
    close = difflib.get_close_matches(wanted, known, n=3)
    raise KubernetesError(
        f"This cluster serves no kind of object called {word!r}.",
        hint=(f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else "")
        + "All kinds: kubectl api-resources.",
    )


def for_manifest(api_version: str, kind: str) -> Resource:
    """The resource of a manifest's ``apiVersion`` and ``kind``."""
    group, _, version = api_version.rpartition("/")
    for attempt in ("cached", "fresh"):
        if attempt == "fresh":
            forget()
        served = [r for r in resources() if r.group == group and r.version == version]
        for resource in served:
            if resource.kind == kind:
                return resource
    if not served:
        raise ManifestRejected(
            f"apiVersion {api_version!r} is not served by this cluster.",
            hint="Common ones: v1 (Pod, Service, PersistentVolumeClaim), apps/v1 (Deployment, "
            "StatefulSet), batch/v1 (Job). See kubectl api-versions.",
        )
    kinds = sorted(r.kind for r in served)
    close = difflib.get_close_matches(kind, kinds, n=1)
    raise ManifestRejected(
        f"There is no kind {kind!r} in apiVersion {api_version!r}.",
        hint=(f"Did you mean {close[0]!r}? " if close else "")
        + f"Kinds in {api_version}: {', '.join(kinds[:15])}.",
    )


def split_target(target: str) -> tuple[Resource, str]:
    """``"deploy/web"`` -> (the Deployment resource, ``"web"``)."""
    word, slash, name = target.partition("/")
    if not slash or not word or not name:
        raise CourseError(
            f"{target!r} does not say what kind of object it is.",
            hint="Write kind/name, as kubectl does: 'pod/web', 'deployment/web', 'pvc/data'.",
        )
    return resolve(word), name
