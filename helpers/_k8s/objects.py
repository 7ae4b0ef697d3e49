"""Kubernetes objects: apply, get, list, delete, and the learner's namespace.

The namespace rule, the same for every call: a call about namespaced objects takes ``ns``; leave
it out and it uses your namespace for this chapter (``k8s.namespace()``, e.g. ``alice-03-pods``).
Listing calls look across every namespace only when asked (``all_namespaces=True``).
Cluster-wide kinds (nodes, namespaces, persistent volumes, storage classes) ignore ``ns``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .._errors import CourseError, Forbidden, ManifestRejected, ObjectNotFound
from .._identity import Chapter, chapter, learner_name
from .._output import Table, step
from . import status
from .client import get_or_none, request
from .discovery import Resource, for_manifest, resolve, split_target

# The field manager kubectl uses for `kubectl apply --server-side`, so the helper and the CLI
# share ownership of the same fields instead of fighting over them.
FIELD_MANAGER = "kubectl"

Manifest = str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]]


def namespace_for(resource: Resource, ns: str | None) -> str | None:
    """The namespace a call works in: ``ns``, else this chapter's; None for cluster-wide kinds."""
    if not resource.namespaced:
        return None
    return ns or chapter().namespace


def object_path(target: str, ns: str | None) -> str:
    """``"deploy/web"`` -> ``/apis/apps/v1/namespaces/NS/deployments/web``."""
    resource, name = split_target(target)
    return f"{resource.collection(namespace_for(resource, ns))}/{name}"


class Object:
    """A Kubernetes object as the API server returned it. ``.raw`` is the whole JSON.

    >>> pod = k8s.get("pod/web", ns)      # doctest: +SKIP
    >>> pod.status["phase"], pod.refresh().status["podIP"]   # doctest: +SKIP
    """

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw: dict[str, Any] = dict(raw)

    @property
    def kind(self) -> str:
        return str(self.raw.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.raw["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        found = self.raw["metadata"].get("namespace")
        return str(found) if found else None

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.raw.get("metadata") or {})

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.get("labels") or {})

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.raw.get("spec") or {})

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.raw.get("status") or {})

    def refresh(self) -> Object:
        """Read the object again from the API server; returns itself, updated."""
        self.raw = get(f"{self.kind}/{self.name}", self.namespace).raw
        return self

    def conditions(self) -> Table:
        """The object's status conditions (type, status, reason, message) as a table.

        CLI: ``kubectl describe KIND NAME`` (Conditions)
        """
        rows = [
            [c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message") or ""]
            for c in self.status.get("conditions") or []
        ]
        return Table(["type", "status", "reason", "message"], rows)

    def yaml(self) -> str:
        """The object as YAML, without the noisy managedFields.  CLI: ``kubectl get ... -o yaml``"""
        shown = copy.deepcopy(self.raw)
        shown.get("metadata", {}).pop("managedFields", None)
        return str(yaml.safe_dump(shown, sort_keys=False))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Object) and other.raw == self.raw

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.kind.lower()}/{self.name}{where}: {status.summary(self.raw)}"

    __repr__ = __str__


def _with_kind(raw: Mapping[str, Any], resource: Resource) -> Object:
    # List items come without kind and apiVersion; put them back so every Object knows its kind.
    return Object({"kind": resource.kind, "apiVersion": resource.api_version, **raw})


# --- namespaces -----------------------------------------------------------------------------


def namespace(chapter_name: str | None = None) -> str:
    """Your namespace for this chapter (or ``chapter_name``), created if missing; returns its name.

    It never changes which chapter the notebook works on (``helpers.setup`` does that).

    CLI: ``kubectl create namespace alice-03-pods``

    >>> ns = namespace()   # doctest: +SKIP
    'alice-03-pods'
    """
    from .waiting import wait

    wanted = chapter() if chapter_name is None else Chapter(chapter_name, learner_name())
    name = wanted.namespace
    existing = get_or_none(f"/api/v1/namespaces/{name}")
    if existing and (existing.get("status") or {}).get("phase") == "Terminating":
        with step(f"Waiting for the old namespace {name} to finish deleting"):
            wait(f"namespace/{name}", "deleted", timeout=120)
        existing = None
    if existing is None:
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": wanted.labels},
        }
        request("POST", "/api/v1/namespaces", body=body, what=f"creating namespace {name}")
        # Pods are refused until the controller manager has made the namespace's "default"
        # service account: wait for it, so the next cell can create pods at once.
        wait("serviceaccount/default", "exists", name, timeout=30)
    return name


def delete_namespace(
    ns: str | None = None, *, wait_until_gone: bool = True, timeout: float = 120
) -> None:
    """Delete a namespace and everything in it (default: yours for this chapter). With a
    classroom's student account, which may not delete namespaces, it empties it instead.

    CLI: ``kubectl delete namespace alice-03-pods`` (which also waits until it is gone)
    """
    from .waiting import wait

    name = ns or chapter().namespace
    if get_or_none(f"/api/v1/namespaces/{name}") is None:
        return
    try:
        request("DELETE", f"/api/v1/namespaces/{name}", what=f"deleting namespace {name}")
    except Forbidden:  # a classroom's student account: the namespace stays, emptied
        with step(f"Emptying namespace {name} (you may not delete it: it stays)"):
            empty_namespace(name, timeout if wait_until_gone else 0)
        return
    if wait_until_gone:
        with step(f"Deleting namespace {name} and everything in it"):
            wait(f"namespace/{name}", "deleted", timeout=timeout)


# What a student's own objects can be; emptied in this order (what owns pods first).
EMPTIED = (
    "deployments",
    "statefulsets",
    "daemonsets",
    "replicasets",
    "jobs",
    "cronjobs",
    "horizontalpodautoscalers",
    "services",
    "pods",
    "persistentvolumeclaims",
    "configmaps",
    "secrets",
)


def empty_namespace(name: str, timeout: float) -> None:
    """Delete everything of the kinds above in the namespace (what ``kubectl delete all,pvc,
    cm,secret --all`` does) and its quotas but the classroom's own, then wait up to ``timeout``
    s for its pods to be gone."""
    from .._classroom_policy import OWN
    from .waiting import wait

    for kind in (*EMPTIED, "resourcequotas"):
        # The classroom's own quota is the instructor's: it stays.
        keep = {"fieldSelector": f"metadata.name!={OWN}"} if kind == "resourcequotas" else None
        try:
            request(
                "DELETE",
                resolve(kind).collection(name),
                body={"propagationPolicy": "Background"},
                query=keep,
                what=f"deleting the {kind} in {name}",
            )
        except (Forbidden, ObjectNotFound):
            continue  # a kind this account may not touch, or this server does not serve
    for pod in list_objects("pods", name) if timeout else []:
        wait(f"pod/{pod.name}", "deleted", name, timeout=timeout)


# --- manifests and apply --------------------------------------------------------------------


def load_manifests(manifest: Manifest) -> list[dict[str, Any]]:
    """The objects of a manifest: a file path, YAML text, a dict, or a list of dicts."""
    if isinstance(manifest, Mapping):
        documents: list[Any] = [dict(manifest)]
    elif isinstance(manifest, Sequence) and not isinstance(manifest, str):
        documents = [dict(m) if isinstance(m, Mapping) else m for m in manifest]
    else:
        text = str(manifest)
        if "\n" not in text and (text.endswith((".yaml", ".yml", ".json")) or Path(text).exists()):
            path = Path(text)
            if not path.is_file():
                raise CourseError(
                    f"There is no manifest file {path}.",
                    hint=f"Check the path; this notebook runs in {Path.cwd()}.",
                )
            text = path.read_text()
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as error:
            raise ManifestRejected(
                f"The manifest is not valid YAML: {error}",
                hint="Check the indentation (spaces, not tabs) near that line.",
            ) from None
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document or "apiVersion" not in document:
            raise ManifestRejected(
                "Every manifest needs apiVersion, kind and metadata.name.",
                hint="Start from an example in the lesson.",
            )
        if not (document.get("metadata") or {}).get("name"):
            raise ManifestRejected(
                f"The {document['kind']} has no metadata.name.",
                hint="Give it a name under metadata:.",
            )
    return documents


def _labelled_as_yours(document: Mapping[str, Any]) -> dict[str, Any]:
    metadata = dict(document.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), "course.learner": learner_name()}
    return {**document, "metadata": metadata}


def delete_cluster_objects(
    learner: str | None, kinds: Sequence[str] = ("persistentvolumes",)
) -> list[str]:
    """Delete a learner's objects that belong to no namespace (``apply`` labels them; None:
    every learner's); returns what was deleted, as ``kind/name``."""
    selector = "course.learner" if learner is None else f"course.learner={learner}"
    deleted = []
    for kind in kinds:
        for found in list_objects(kind, selector=selector):
            delete(f"{kind}/{found.name}", wait_until_gone=False)
            deleted.append(f"{found.kind.lower()}/{found.name}")
    return deleted


def apply(manifest: Manifest, ns: str | None = None, *, dry_run: bool = False) -> list[Object]:
    """Create or update objects with server-side apply. Takes a file, YAML text, or dicts.

    With ``dry_run=True`` the API server checks everything (schema, defaults, admission) and
    stores nothing. Objects that belong to no namespace (a PersistentVolume) get the label
    ``course.learner=<you>``, so that cleanup finds them when your namespaces go.

    CLI: ``kubectl apply --server-side --force-conflicts -n NS -f FILE`` (``--dry-run=server``)

    >>> apply("manifests/two-containers.yaml", ns)   # doctest: +SKIP
    [pod/two-containers in alice-03-pods: Pending, ready 0/2]
    """
    applied = []
    for document in load_manifests(manifest):
        resource = for_manifest(document["apiVersion"], document["kind"])
        name = document["metadata"]["name"]
        written = (document.get("metadata") or {}).get("namespace")
        if written and ns and written != ns and resource.namespaced:
            raise ManifestRejected(
                f"The {document['kind']} {name!r} says namespace {written!r}, but you asked for {ns!r}.",
                hint="Remove metadata.namespace from the manifest, or pass the same namespace.",
            )
        where = namespace_for(resource, written or ns)
        if not resource.namespaced and resource.kind != "Namespace":
            document = _labelled_as_yours(document)
        result = request(
            "PATCH",
            f"{resource.collection(where)}/{name}",
            body=document,
            query={
                "fieldManager": FIELD_MANAGER,
                "force": "true",
                "dryRun": "All" if dry_run else None,
            },
            content_type="application/apply-patch+yaml",
            what=f"applying {document['kind'].lower()}/{name}" + (" (dry run)" if dry_run else ""),
        )
        applied.append(_with_kind(result, resource))
    return applied


# --- get, list, delete ----------------------------------------------------------------------


def annotate(target: str, annotations: Mapping[str, str | None], ns: str | None = None) -> Object:
    """Set annotations on an object, replacing any with the same key (``None`` removes one).
    Any change to a pod also makes its kubelet sync it at once.

    CLI: ``kubectl annotate --overwrite TARGET KEY=VALUE -n NS`` (``KEY-`` removes it)
    """
    request(
        "PATCH",
        object_path(target, ns),
        body={"metadata": {"annotations": dict(annotations)}},
        content_type="application/merge-patch+json",
        what=f"annotating {target}",
    )
    return get(target, ns)


def get(target: str, ns: str | None = None) -> Object:
    """One object, e.g. ``get("deploy/web", ns)``.  CLI: ``kubectl get deploy/web -n NS -o json``"""
    found = find(target, ns)
    if found is None:
        resource, name = split_target(target)
        where = namespace_for(resource, ns)
        place = f" in namespace {where}" if where else ""
        raise ObjectNotFound(
            f"There is no {resource.singular} {name!r}{place}.",
            hint=f"List what is there: k8s.list_objects({resource.plural!r}"
            + (f", {where!r})" if where else ")")
            + ", or check the spelling.",
        )
    return found


def find(target: str, ns: str | None = None) -> Object | None:
    """The object, or None when it does not exist."""
    resource, name = split_target(target)
    found = get_or_none(f"{resource.collection(namespace_for(resource, ns))}/{name}")
    return _with_kind(found, resource) if found is not None else None


def exists(target: str, ns: str | None = None) -> bool:
    """Whether the object exists.  CLI: ``kubectl get TARGET -n NS``"""
    return find(target, ns) is not None


def list_objects(
    kind: str, ns: str | None = None, *, selector: str | None = None, all_namespaces: bool = False
) -> list[Object]:
    """All objects of a kind (``"pods"``, ``"deploy"``...) in ``ns``, or in every namespace.

    CLI: ``kubectl get KIND -n NS -l SELECTOR -o json`` (``--all-namespaces``)
    """
    resource = resolve(kind)
    where = None if all_namespaces else namespace_for(resource, ns)
    listing = request(
        "GET", resource.collection(where), query={"labelSelector": selector}, what=f"listing {kind}"
    )
    return [_with_kind(item, resource) for item in listing.get("items") or []]


def delete(
    target: str, ns: str | None = None, *, wait_until_gone: bool = True, timeout: float = 60
) -> None:
    """Delete an object and, by default, wait until it and what it owns are gone.

    CLI: ``kubectl delete TARGET -n NS --cascade=foreground`` (kubectl also waits)
    """
    from .waiting import wait

    path = object_path(target, ns)
    try:
        # Foreground: the object goes only after what it owns (a deployment's pods) has gone.
        request("DELETE", path, body={"propagationPolicy": "Foreground"}, what=f"deleting {target}")
    except ObjectNotFound:
        return
    if wait_until_gone:
        wait(target, "deleted", ns, timeout=timeout)
