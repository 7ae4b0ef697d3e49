"""Kubernetes, as the course uses it: a few verbs over the API server's REST interface.

Every call is one or two HTTP requests that the docstrings name, next to the kubectl command that
does the same. The official ``kubernetes`` client handles the connection (kubeconfig, TLS, exec
and port-forward streams); errors from it are turned into the course's own errors here.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.stream import portforward as k8s_portforward
from kubernetes.stream import stream as k8s_stream

from ._cluster import backend, kubeconfig_path, start_hint
from ._docker import Usage
from ._errors import (
    ClusterUnreachable,
    CourseError,
    Forbidden,
    KubernetesError,
    ManifestRejected,
    ObjectNotFound,
    WaitTimeout,
)
from ._identity import chapter
from ._output import ExecResult, Table

FIELD_MANAGER = "course"
_api: k8s_client.ApiClient | None = None
_resources: dict[
    str, dict[str, tuple[str, bool]]
] = {}  # apiVersion -> kind -> (plural, namespaced)

# Short names learners type, as kubectl accepts them.
_ALIASES = {
    "po": "Pod",
    "pod": "Pod",
    "pods": "Pod",
    "deploy": "Deployment",
    "deployment": "Deployment",
    "deployments": "Deployment",
    "rs": "ReplicaSet",
    "replicaset": "ReplicaSet",
    "replicasets": "ReplicaSet",
    "svc": "Service",
    "service": "Service",
    "services": "Service",
    "pvc": "PersistentVolumeClaim",
    "persistentvolumeclaim": "PersistentVolumeClaim",
    "pv": "PersistentVolume",
    "persistentvolume": "PersistentVolume",
    "sc": "StorageClass",
    "storageclass": "StorageClass",
    "ns": "Namespace",
    "namespace": "Namespace",
    "no": "Node",
    "node": "Node",
    "nodes": "Node",
    "cm": "ConfigMap",
    "configmap": "ConfigMap",
    "secret": "Secret",
    "lease": "Lease",
    "leases": "Lease",
    "ev": "Event",
    "event": "Event",
    "events": "Event",
}
_API_VERSIONS = {
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StorageClass": "storage.k8s.io/v1",
    "Lease": "coordination.k8s.io/v1",
    "Event": "v1",
}
# Container states that will not fix themselves: a wait for Ready stops early on these.
HOPELESS_REASONS = {
    "ErrImagePull": "the image cannot be pulled: check its name and tag, and that it was loaded",
    "ImagePullBackOff": "the image cannot be pulled: check its name and tag, and that it was loaded",
    "InvalidImageName": "the image name is not valid",
    "CrashLoopBackOff": "the container keeps exiting: read its logs with previous=True",
    "CreateContainerConfigError": "the container's config refers to something missing "
    "(a ConfigMap, Secret or key)",
    "RunContainerError": "the container could not start: check its command",
    "CreateContainerError": "the container could not be created: check its command and mounts",
}


# --- connection and errors ------------------------------------------------------------------


def api() -> k8s_client.ApiClient:
    """The API client for the course's cluster (KUBECONFIG and its current context)."""
    global _api
    if _api is None:
        path = kubeconfig_path()
        try:
            _api = k8s_config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError, TypeError) as error:
            raise ClusterUnreachable(
                f"No usable kubeconfig ({path or 'none found'}): {error}",
                hint=start_hint(),
            ) from None
    return _api


def _forget_client() -> None:
    global _api
    _api = None
    _resources.clear()


def _server() -> str:
    return str(api().configuration.host)


def _translate(error: Exception, *, what: str) -> CourseError:
    """Turn a client library error into one sentence and a fix."""
    if isinstance(error, CourseError):
        return error
    if isinstance(error, ApiException):
        try:
            status = json.loads(error.body or "{}")
        except (ValueError, TypeError):
            status = {}
        message = status.get("message") or error.reason or str(error.status)
        if error.status in (401, 403):
            return Forbidden(
                f"{what}: forbidden. The API server said: {message}",
                hint="Your credentials may not do this. In a classroom, work in your "
                "own namespace: k8s.namespace().",
            )
        if error.status == 404:
            return ObjectNotFound(
                f"{what}: not found. {message}",
                hint="Check the name and namespace; list what exists with "
                "k8s.pods(ns) or k8s.get(...).",
            )
        causes = (status.get("details") or {}).get("causes") or []
        fields = [c.get("field") for c in causes if c.get("field")]
        typed = re.search(
            r"failed to create typed patch object \([^)]*\): (\.[^:]+): (.*)", message
        )
        if typed:  # server-side apply checks the schema first, and answers 500 for a bad field
            fields, message = [typed.group(1).lstrip(".")], typed.group(2)
            error.status = 422
        if error.status in (400, 409, 415, 422):
            field_text = f" Field: {', '.join(fields)}." if fields else ""
            return ManifestRejected(
                f"{what}: the API server rejected it. It said: {message}.{field_text}",
                hint="Fix that field in the manifest and apply it again. The schema of a field: "
                "kubectl explain KIND.FIELD (for example kubectl explain pod.spec.containers).",
            )
        return KubernetesError(f"{what}: HTTP {error.status}. {message}")
    if isinstance(error, urllib3.exceptions.HTTPError | OSError):
        return ClusterUnreachable(
            f"{what}: the {backend()} cluster's API server at {_server()} does not answer.",
            hint=start_hint(),
            output=str(error)[:300],
        )
    return KubernetesError(f"{what}: {error}")


def _send(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    timeout: float = 30,
) -> Any:
    """One HTTP request through the client's connection; returns the urllib3 response, unread."""
    client = api()
    prepared = client.param_serialize(
        method=method,
        resource_path=path,
        query_params=list((query or {}).items()),
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    reply = client.call_api(*prepared, _request_timeout=timeout)
    if reply.status >= 400:
        reply.read()  # type: ignore[no-untyped-call]
        raise ApiException(http_resp=reply)
    return reply.response


def request(
    method: str,
    path: str,
    *,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    timeout: float = 30,
    what: str = "",
) -> Any:
    """Send one HTTP request to the API server and return the decoded JSON (or text).

    This is all the Kubernetes API is: ``GET /api/v1/namespaces/NS/pods`` and friends.
    CLI: ``kubectl get --raw PATH``
    """
    try:
        reply = _send(
            method, path, body=body, query=query, content_type=content_type, timeout=timeout
        )
        text = bytes(reply.data).decode(errors="replace")
    except Exception as error:
        raise _translate(error, what=what or f"{method} {path}") from None
    try:
        return json.loads(text)
    except ValueError:
        return text


def raw(path: str, **query: Any) -> Any:
    """GET any API path and return the JSON.  CLI: ``kubectl get --raw /api/v1/nodes``

    >>> raw("/version")["gitVersion"]   # doctest: +SKIP
    'v1.35.4'
    """
    return request("GET", path, query=query or None)


# --- resources and paths --------------------------------------------------------------------


def _discover(api_version: str) -> dict[str, tuple[str, bool]]:
    if api_version not in _resources:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        listing = request("GET", base, what=f"discovering {api_version}")
        if not isinstance(listing, dict):
            raise ManifestRejected(f"apiVersion {api_version!r} is not served by this cluster.")
        _resources[api_version] = {
            r["kind"]: (r["name"], bool(r["namespaced"]))
            for r in listing.get("resources", [])
            if "/" not in r["name"]
        }
    return _resources[api_version]


def _collection_path(
    api_version: str, kind: str, namespace: str | None, *, across_namespaces: bool = False
) -> str:
    try:
        kinds = _discover(api_version)
    except ObjectNotFound:
        raise ManifestRejected(
            f"apiVersion {api_version!r} is not served by this cluster.",
            hint="Common ones: v1 (Pod, Service, PersistentVolumeClaim), apps/v1 (Deployment).",
        ) from None
    if kind not in kinds:
        raise ManifestRejected(
            f"There is no kind {kind!r} in apiVersion {api_version!r}.",
            hint=f"Kinds in {api_version}: {', '.join(sorted(kinds)[:12])} ...",
        )
    plural, namespaced = kinds[kind]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced and not namespace and across_namespaces:
        return f"{base}/{plural}"
    if namespaced:
        if not namespace:
            raise CourseError(
                f"{kind} objects live in a namespace, and none was given.",
                hint="Pass the namespace, e.g. k8s.apply(manifest, ns).",
            )
        return f"{base}/namespaces/{namespace}/{plural}"
    return f"{base}/{plural}"


def _parse_target(target: str) -> tuple[str, str, str]:
    """'deploy/web' -> ('apps/v1', 'Deployment', 'web')."""
    if "/" not in target:
        raise CourseError(
            f"{target!r} does not say what kind of object it is.",
            hint="Write kind/name, as kubectl does: 'pod/web', 'deployment/web'.",
        )
    kind_word, name = target.split("/", 1)
    word = kind_word.lower()
    kind = (
        _ALIASES.get(word)
        or _ALIASES.get(word.removesuffix("es"))
        or _ALIASES.get(word.removesuffix("s"))
        or kind_word
    )
    return _API_VERSIONS.get(kind, "v1"), kind, name


@dataclass
class Object:
    """A Kubernetes object as the API server returned it; ``.raw`` is the whole JSON."""

    raw: dict[str, Any]

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
        return dict(self.raw.get("metadata", {}))

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.raw.get("spec", {}))

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.raw.get("status", {}))

    def conditions(self) -> Table:
        """The object's status conditions (type, status, reason, message) as a table."""
        rows = [
            [
                c.get("type", ""),
                c.get("status", ""),
                c.get("reason", ""),
                (c.get("message") or "")[:80],
            ]
            for c in self.status.get("conditions") or []
        ]
        return Table(["type", "status", "reason", "message"], rows)

    def yaml(self) -> str:
        """The object as YAML, without the noisy managedFields."""
        shown = json.loads(json.dumps(self.raw))
        shown.get("metadata", {}).pop("managedFields", None)
        return str(yaml.safe_dump(shown, sort_keys=False))

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.kind.lower()}/{self.name}{where}: {_summary(self.raw)}"

    __repr__ = __str__


def _summary(raw: Mapping[str, Any]) -> str:
    kind, status, spec = raw.get("kind"), raw.get("status") or {}, raw.get("spec") or {}
    if kind == "Pod":
        return f"{pod_status(raw)}, ready {_ready_text(raw)}"
    if kind in ("Deployment", "ReplicaSet"):
        return (
            f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)} ready, "
            f"{status.get('updatedReplicas', 0)} up to date"
        )
    if kind in ("PersistentVolumeClaim", "PersistentVolume"):
        return str(status.get("phase", "unknown"))
    return "present"


# --- namespaces, apply, get, delete ---------------------------------------------------------


def namespace(chapter_name: str | None = None) -> str:
    """This learner's namespace for the chapter, created if it is missing. Returns its name.

    CLI: ``kubectl create namespace alice-03-pods``

    >>> ns = namespace("03-pods")   # doctest: +SKIP
    'alice-03-pods'
    """
    current = chapter(chapter_name)
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": current.namespace, "labels": current.labels},
    }
    existing = _get_raw("/api/v1/namespaces/" + current.namespace)
    if existing and existing.get("status", {}).get("phase") == "Terminating":
        wait(f"namespace/{current.namespace}", "deleted", None, timeout=90)
        existing = None
    if existing is None:
        request(
            "POST", "/api/v1/namespaces", body=body, what=f"creating namespace {current.namespace}"
        )
        _wait_for_default_serviceaccount(current.namespace)
    return current.namespace


def _wait_for_default_serviceaccount(ns: str, timeout: float = 30) -> None:
    # Pods are refused until the controller manager has made the namespace's "default" account.
    deadline = time.monotonic() + timeout
    while _get_raw(f"/api/v1/namespaces/{ns}/serviceaccounts/default") is None:
        if time.monotonic() > deadline:
            raise WaitTimeout(
                f"namespace {ns} got no default service account in {timeout:.0f} s.",
                hint="Is kube-controller-manager running? Try `make doctor`.",
            )
        time.sleep(0.2)


def delete_namespace(
    ns: str | None = None, *, wait_until_gone: bool = True, timeout: float = 120
) -> None:
    """Delete a namespace and everything in it (default: this chapter's).

    CLI: ``kubectl delete namespace alice-03-pods``
    """
    name = ns or chapter().namespace
    if _get_raw(f"/api/v1/namespaces/{name}") is None:
        return
    request("DELETE", f"/api/v1/namespaces/{name}", what=f"deleting namespace {name}")
    if wait_until_gone:
        wait(f"namespace/{name}", "deleted", None, timeout=timeout)


def _load_manifests(
    manifest: str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    if isinstance(manifest, Mapping):
        return [dict(manifest)]
    if isinstance(manifest, Sequence) and not isinstance(manifest, str):
        return [dict(m) for m in manifest]
    text = str(manifest)
    if "\n" not in text and (text.endswith((".yaml", ".yml", ".json")) or Path(text).exists()):
        path = Path(text)
        if not path.exists():
            raise CourseError(
                f"There is no manifest file {path}.",
                hint=f"Check the path; this notebook runs in {Path.cwd()}.",
            )
        text = path.read_text()
    try:
        documents = [d for d in yaml.safe_load_all(text) if d]
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
    return documents


def apply(
    manifest: str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]], ns: str | None = None
) -> list[Object]:
    """Create or update objects with server-side apply. Takes a file, YAML text, or dicts.

    CLI: ``kubectl apply --server-side -n NS -f FILE``
    REST: ``PATCH /api/v1/namespaces/NS/pods/NAME`` with Content-Type application/apply-patch+yaml

    >>> apply("manifests/two-containers.yaml", ns)   # doctest: +SKIP
    [pod/two-containers in alice-03-pods: Pending, ready 0/2]
    """
    applied = []
    for document in _load_manifests(manifest):
        name = (document.get("metadata") or {}).get("name")
        if not name:
            raise ManifestRejected(
                f"The {document['kind']} has no metadata.name.",
                hint="Give it a name under metadata:.",
            )
        document_ns = (document.get("metadata") or {}).get("namespace") or ns
        base = _collection_path(document["apiVersion"], document["kind"], document_ns)
        what = f"applying {document['kind'].lower()}/{name}"
        result = request(
            "PATCH",
            f"{base}/{name}",
            body=document,
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type="application/apply-patch+yaml",
            what=what,
        )
        applied.append(Object(result))
    return applied


def _get_raw(path: str) -> dict[str, Any] | None:
    try:
        found = request("GET", path)
    except ObjectNotFound:
        return None
    return found if isinstance(found, dict) else None


def _object_path(target: str, ns: str | None) -> str:
    api_version, kind, name = _parse_target(target)
    return f"{_collection_path(api_version, kind, ns)}/{name}"


def get(target: str, ns: str | None = None) -> Object:
    """One object, e.g. ``get("deploy/web", ns)``.  CLI: ``kubectl get deploy/web -n NS -o yaml``"""
    found = _get_raw(_object_path(target, ns))
    if found is None:
        raise ObjectNotFound(
            f"There is no {target} in namespace {ns}.",
            hint="List what is there: k8s.pods(ns), or check the spelling.",
        )
    return Object(found)


def exists(target: str, ns: str | None = None) -> bool:
    """Whether the object exists.  CLI: ``kubectl get TARGET -n NS``"""
    return _get_raw(_object_path(target, ns)) is not None


def list_objects(kind: str, ns: str | None = None, *, selector: str | None = None) -> list[Object]:
    """All objects of a kind (``"pods"``, ``"deploy"``...) in ``ns``, or in every namespace.

    CLI: ``kubectl get KIND -n NS -l SEL``  (no ns: ``kubectl get KIND --all-namespaces``)
    """
    api_version, real_kind, _ = _parse_target(kind + "/x")
    query = {"labelSelector": selector} if selector else None
    listing = request(
        "GET", _collection_path(api_version, real_kind, ns, across_namespaces=True), query=query
    )
    return [Object({**item, "kind": real_kind}) for item in listing.get("items", [])]


def delete(
    target: str, ns: str | None = None, *, wait_until_gone: bool = True, timeout: float = 60
) -> None:
    """Delete an object, waiting until it is gone.  CLI: ``kubectl delete TARGET -n NS``"""
    path = _object_path(target, ns)
    try:
        # Foreground: the object goes only after what it owns (a deployment's pods) has gone.
        request("DELETE", path, body={"propagationPolicy": "Foreground"}, what=f"deleting {target}")
    except ObjectNotFound:
        return
    if wait_until_gone:
        wait(target, "deleted", ns, timeout=timeout)


# --- pods: status, logs, exec ---------------------------------------------------------------


def pod_status(pod: Mapping[str, Any]) -> str:
    """The STATUS column of ``kubectl get pods``: a waiting reason if there is one, else the phase."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    inits = status.get("initContainerStatuses") or []
    done = sum(
        1 for c in inits if ((c.get("state") or {}).get("terminated") or {}).get("exitCode") == 0
    )
    if inits and done < len(inits):
        for container in inits:
            reason = ((container.get("state") or {}).get("waiting") or {}).get("reason")
            if reason and reason not in ("PodInitializing", "ContainerCreating"):
                return f"Init:{reason}"
        return f"Init:{done}/{len(inits)}"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        reason = (state.get("waiting") or state.get("terminated") or {}).get("reason")
        if reason and reason not in ("ContainerCreating", "PodInitializing"):
            return str(reason)
    return str(status.get("phase", "Unknown"))


def _ready_text(pod: Mapping[str, Any]) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or []) or len(statuses)
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return ""
    seconds = int(
        (
            datetime.now(UTC) - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        ).total_seconds()
    )
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def pods(ns: str | None = None, *, selector: str | None = None) -> Table:
    """The pods of a namespace as a table.  CLI: ``kubectl get pods -n NS -o wide``"""
    rows = []
    for pod in list_objects("pods", ns or chapter().namespace, selector=selector):
        restarts = sum(c.get("restartCount", 0) for c in pod.status.get("containerStatuses") or [])
        rows.append(
            [
                pod.name,
                _ready_text(pod.raw),
                pod_status(pod.raw),
                restarts,
                pod.status.get("podIP", ""),
                pod.spec.get("nodeName", ""),
                _age(pod.metadata.get("creationTimestamp")),
            ]
        )
    return Table(["name", "ready", "status", "restarts", "ip", "node", "age"], rows)


def events(ns: str | None = None, *, about: str | None = None, limit: int = 20) -> Table:
    """Recent events, oldest first; ``about="pod/web"`` keeps those of one object.

    CLI: ``kubectl events -n NS --for pod/web``
    """
    selector = None
    if about:
        _, kind, name = _parse_target(about)
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    path = f"/api/v1/namespaces/{ns}/events" if ns else "/api/v1/events"
    items = request("GET", path, query={"fieldSelector": selector} if selector else None).get(
        "items", []
    )

    def when(event: Mapping[str, Any]) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp")
            or ""
        )

    rows = [
        [
            _age(when(e)),
            e.get("type", ""),
            e.get("reason", ""),
            f"{e['involvedObject'].get('kind', '').lower()}/{e['involvedObject'].get('name', '')}",
            (e.get("source") or {}).get("component") or e.get("reportingComponent", ""),
            (e.get("message") or "").strip(),
        ]
        for e in sorted(items, key=when)[-limit:]
    ]
    return Table(["age", "type", "reason", "object", "from", "message"], rows)


def logs(
    pod: str,
    ns: str | None = None,
    *,
    container: str | None = None,
    previous: bool = False,
    tail: int | None = None,
) -> str:
    """What a container wrote to stdout/stderr.

    CLI: ``kubectl logs POD -n NS [-c CONTAINER] [--previous] [--tail N]``
    """
    query: dict[str, Any] = {}
    if container:
        query["container"] = container
    if previous:
        query["previous"] = "true"
    if tail is not None:
        query["tailLines"] = tail
    name = pod.split("/", 1)[-1]
    result = request(
        "GET",
        f"/api/v1/namespaces/{ns or chapter().namespace}/pods/{name}/log",
        query=query,
        what=f"logs of pod/{name}",
    )
    return result if isinstance(result, str) else json.dumps(result)


def exec(
    pod: str,
    command: str | Sequence[str],
    ns: str | None = None,
    *,
    container: str | None = None,
    timeout: float = 30,
) -> ExecResult:
    """Run a command in a pod's container. A string runs through ``sh -c``.

    CLI: ``kubectl exec POD -n NS [-c CONTAINER] -- sh -c 'COMMAND'``
    """
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    name = pod.split("/", 1)[-1]
    namespace_name = ns or chapter().namespace
    core = k8s_client.CoreV1Api(api())
    options: dict[str, Any] = {
        "command": argv,
        "stdout": True,
        "stderr": True,
        "stdin": False,
        "tty": False,
        "_preload_content": False,
    }
    if container:
        options["container"] = container
    try:
        session = k8s_stream(core.connect_get_namespaced_pod_exec, name, namespace_name, **options)
        session.run_forever(timeout=timeout)
        stdout, stderr = session.read_stdout(), session.read_stderr()
        code = session.returncode
        session.close()
    except Exception as error:
        raise _translate(error, what=f"exec in pod/{name}") from None
    return ExecResult(argv, int(code if code is not None else -1), stdout, stderr)


# --- waiting --------------------------------------------------------------------------------


def _condition_true(raw: Mapping[str, Any], condition_type: str) -> bool:
    return any(
        c.get("type") == condition_type and c.get("status") == "True"
        for c in (raw.get("status") or {}).get("conditions") or []
    )


def _rollout_complete(raw: Mapping[str, Any]) -> bool:
    spec, status = raw.get("spec") or {}, raw.get("status") or {}
    wanted = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= (raw.get("metadata") or {}).get("generation", 0)
        and status.get("updatedReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        # Old pods still shutting down (reported since Kubernetes 1.33) count as not done yet.
        and status.get("terminatingReplicas", 0) == 0
    )


def _satisfied(raw: Mapping[str, Any], condition: str) -> bool:
    kind = raw.get("kind")
    if condition == "Ready" and kind == "Pod":
        return _condition_true(raw, "Ready")
    if condition in ("Complete", "Available") and kind == "Deployment":
        return _rollout_complete(raw)
    if condition == "Ready" and kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        wanted = (raw.get("spec") or {}).get("replicas", 1)
        return bool(int((raw.get("status") or {}).get("readyReplicas", 0)) == wanted)
    if condition == "Bound":
        return (raw.get("status") or {}).get("phase") == "Bound"
    if kind == "Pod" and condition == "Unschedulable":
        return any(
            c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in (raw.get("status") or {}).get("conditions") or []
        )
    if kind == "Pod" and condition in ("Pending", "Running", "Succeeded", "Failed"):
        return (raw.get("status") or {}).get("phase") == condition
    if kind == "Pod":
        return pod_status(raw) == condition
    return _condition_true(raw, condition)


def _pods_in_trouble(ns: str, raw: Mapping[str, Any], condition: str) -> str | None:
    """Why the wait cannot succeed, if a pod it depends on is stuck for good."""
    if condition in HOPELESS_REASONS or condition in ("Failed", "Succeeded", "deleted"):
        return None
    candidates: list[Mapping[str, Any]] = []
    if raw.get("kind") == "Pod":
        candidates = [raw]
    elif raw.get("kind") in ("Deployment", "ReplicaSet"):
        labels = ((raw.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        candidates = (
            [p.raw for p in list_objects("pods", ns, selector=selector)] if selector else []
        )
    for pod in candidates:
        statuses = ((pod.get("status") or {}).get("initContainerStatuses") or []) + (
            (pod.get("status") or {}).get("containerStatuses") or []
        )
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in HOPELESS_REASONS:
                return (
                    f"pod/{pod['metadata']['name']} container {container.get('name')!r} is "
                    f"{reason}: {HOPELESS_REASONS[reason]}. {waiting.get('message', '')}".strip()
                )
    return None


def _watch(path: str, name: str, resource_version: str, seconds: int) -> Iterator[dict[str, Any]]:
    """Events of one object from a watch: ``GET PATH?watch=1&fieldSelector=metadata.name=NAME``."""
    query = {
        "watch": "1",
        "fieldSelector": f"metadata.name={name}",
        "resourceVersion": resource_version,
        "timeoutSeconds": str(max(1, seconds)),
        "allowWatchBookmarks": "false",
    }
    try:
        stream = _send("GET", path, query=query, timeout=seconds + 10)
    except Exception as error:
        raise _translate(error, what=f"watching {name}") from None
    buffer = b""
    try:
        for chunk in stream.stream(amt=None, decode_content=True):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
    finally:
        stream.release_conn()


def wait(
    target: str, condition: str, ns: str | None = None, *, timeout: float = 60
) -> Object | None:
    """Wait until ``target`` meets ``condition``, driven by a watch. Returns the object.

    Conditions: ``Ready`` (pod, deployment), ``Complete`` (a rollout), ``Bound`` (PVC),
    ``deleted``, a pod phase (``Running``, ``Succeeded``, ``Failed``), ``Unschedulable`` (the
    scheduler found no node) or a pod status such as ``CrashLoopBackOff``. A pod stuck in ImagePullBackOff or CrashLoopBackOff ends the wait early
    with the reason, and a timeout reports the last state seen and recent events.

    CLI: ``kubectl wait --for=condition=Ready pod/web -n NS --timeout=60s``
         ``kubectl rollout status deploy/web -n NS``

    >>> wait("pod/web", "Ready", ns)   # doctest: +SKIP
    pod/web in alice-03-pods: Running, ready 1/1
    """
    api_version, kind, name = _parse_target(target)
    collection = _collection_path(api_version, kind, ns)
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    next_trouble_check = 0.0
    while True:
        current = _get_raw(f"{collection}/{name}")
        if condition == "deleted":
            if current is None:
                return None
        elif current is not None:
            current["kind"] = kind
            last = current
            if _satisfied(current, condition):
                return Object(current)
            if time.monotonic() >= next_trouble_check:
                trouble = _pods_in_trouble(ns or "", current, condition)
                if trouble:
                    raise WaitTimeout(
                        f"{target} will not become {condition}: {trouble}",
                        hint=f"Look at: k8s.events({ns!r}, about={target!r}), and fix the manifest.",
                    )
                next_trouble_check = time.monotonic() + 2
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        resource_version = (current or {}).get("metadata", {}).get("resourceVersion", "0")
        try:
            for event in _watch(collection, name, resource_version, int(min(remaining, 5)) or 1):
                obj = event.get("object") or {}
                if event.get("type") == "DELETED" and condition == "deleted":
                    return None
                if event.get("type") in ("ADDED", "MODIFIED"):
                    obj["kind"] = kind
                    last = obj
                    if condition != "deleted" and _satisfied(obj, condition):
                        return Object(obj)
                    if time.monotonic() >= next_trouble_check:
                        break  # look at the pods again
                if time.monotonic() >= deadline:
                    break
        except ClusterUnreachable:
            raise
        except KubernetesError:
            time.sleep(0.2)
    state = _summary(last) if last else "it does not exist"
    recent = events(ns, about=target if kind != "Namespace" else None, limit=5) if ns else None
    raise WaitTimeout(
        f"{target} was not {condition} after {timeout:.0f} s. Last state seen: {state}.",
        hint=f"Look at: k8s.events({ns!r}, about={target!r}) and k8s.pods({ns!r}).",
        output=str(recent) if recent is not None and len(recent) else None,
    )


# --- deployments ----------------------------------------------------------------------------


def scale(deployment: str, replicas: int, ns: str | None = None) -> Object:
    """Set the number of replicas.  CLI: ``kubectl scale deploy/web --replicas=3 -n NS``"""
    name = deployment.split("/", 1)[-1]
    path = _object_path(f"deployment/{name}", ns) + "/scale"
    request(
        "PATCH",
        path,
        body={"spec": {"replicas": replicas}},
        content_type="application/merge-patch+json",
        what=f"scaling deployment/{name}",
    )
    return get(f"deployment/{name}", ns)


def set_image(
    deployment: str, container: str, image: str, ns: str | None = None, *, reason: str | None = None
) -> Object:
    """Change a container's image, which starts a rolling update.

    CLI: ``kubectl set image deploy/web web=course/web:v2 -n NS``
    """
    name = deployment.split("/", 1)[-1]
    current = get(f"deployment/{name}", ns)
    containers = current.spec["template"]["spec"]["containers"]
    if container not in [c["name"] for c in containers]:
        raise CourseError(
            f"deployment/{name} has no container {container!r}.",
            hint=f"Its containers: {', '.join(c['name'] for c in containers)}.",
        )
    patch: dict[str, Any] = {
        "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}
    }
    if reason:
        patch["metadata"] = {"annotations": {"kubernetes.io/change-cause": reason}}
    request(
        "PATCH",
        _object_path(f"deployment/{name}", ns),
        body=patch,
        content_type="application/strategic-merge-patch+json",
        what=f"setting the image of deployment/{name}",
    )
    return get(f"deployment/{name}", ns)


def _replicasets_of(name: str, ns: str | None) -> list[Object]:
    owned = [
        rs
        for rs in list_objects("rs", ns)
        if any(
            o.get("kind") == "Deployment" and o.get("name") == name
            for o in rs.metadata.get("ownerReferences") or []
        )
    ]
    return sorted(
        owned,
        key=lambda rs: int(
            rs.metadata.get("annotations", {}).get("deployment.kubernetes.io/revision", 0)
        ),
    )


def rollout_history(deployment: str, ns: str | None = None) -> Table:
    """The revisions of a deployment, oldest first.  CLI: ``kubectl rollout history deploy/web``"""
    name = deployment.split("/", 1)[-1]
    rows = []
    for rs in _replicasets_of(name, ns):
        annotations = rs.metadata.get("annotations", {})
        images = ", ".join(c["image"] for c in rs.spec["template"]["spec"]["containers"])
        rows.append(
            [
                int(annotations.get("deployment.kubernetes.io/revision", 0)),
                images,
                rs.status.get("replicas", 0),
                annotations.get("kubernetes.io/change-cause", ""),
            ]
        )
    return Table(["revision", "images", "pods", "change-cause"], rows)


def rollback(deployment: str, ns: str | None = None, *, revision: int | None = None) -> Object:
    """Go back to the previous revision (or ``revision``).

    CLI: ``kubectl rollout undo deploy/web [--to-revision=N] -n NS``
    """
    name = deployment.split("/", 1)[-1]
    history = _replicasets_of(name, ns)
    if len(history) < 2 and revision is None:
        raise CourseError(
            f"deployment/{name} has no earlier revision to go back to.",
            hint="See k8s.rollout_history(...).",
        )
    by_revision = {
        int(rs.metadata["annotations"]["deployment.kubernetes.io/revision"]): rs for rs in history
    }
    wanted = revision if revision is not None else sorted(by_revision)[-2]
    if wanted not in by_revision:
        raise CourseError(
            f"deployment/{name} has no revision {wanted}.",
            hint=f"Revisions: {sorted(by_revision)}.",
        )
    template = json.loads(json.dumps(by_revision[wanted].spec["template"]))
    template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    request(
        "PATCH",
        _object_path(f"deployment/{name}", ns),
        body={"spec": {"template": template}},
        content_type="application/merge-patch+json",
        what=f"rolling back deployment/{name}",
    )
    return get(f"deployment/{name}", ns)


# --- reaching workloads ---------------------------------------------------------------------


def fetch(
    target: str, ns: str | None = None, *, port: int = 80, path: str = "/", timeout: float = 10
) -> str:
    """GET a page from a pod or service through the API server's proxy.

    CLI: ``kubectl get --raw /api/v1/namespaces/NS/pods/web:80/proxy/``
    """
    _, kind, name = _parse_target(target)
    plural = {"Pod": "pods", "Service": "services"}.get(kind)
    if plural is None:
        raise CourseError(
            f"fetch reaches pods and services, not {kind}.",
            hint="Use 'pod/NAME' or 'service/NAME'.",
        )
    url = (
        f"/api/v1/namespaces/{ns or chapter().namespace}/{plural}/{name}:{port}/proxy/"
        f"{quote(path.lstrip('/'))}"
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = request("GET", url, timeout=timeout, what=f"fetching {path} from {target}")
            return result if isinstance(result, str) else json.dumps(result)
        except KubernetesError as error:
            if isinstance(error, ClusterUnreachable | Forbidden) or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@contextmanager
def port_forward(pod: str, port: int, ns: str | None = None) -> Iterator[int]:
    """Forward a free port on 127.0.0.1 to a pod's port while the ``with`` block runs.

    CLI: ``kubectl port-forward pod/web -n NS 8080:80``

    >>> with port_forward("pod/web", 80, ns) as local_port:    # doctest: +SKIP
    ...     helpers.fetch(f"http://127.0.0.1:{local_port}/")
    """
    name = pod.split("/", 1)[-1]
    namespace_name = ns or chapter().namespace
    core = k8s_client.CoreV1Api(api())
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    stop = threading.Event()

    def pump(source: Callable[[], bytes], sink: Callable[[bytes], Any]) -> None:
        while not stop.is_set():
            try:
                data = source()
            except (TimeoutError, OSError):
                continue
            if not data:
                return
            sink(data)

    def serve(conn: socket.socket) -> None:
        forward = k8s_portforward(
            core.connect_get_namespaced_pod_portforward, name, namespace_name, ports=str(port)
        )
        remote = forward.socket(port)
        remote.settimeout(0.5)
        conn.settimeout(0.5)
        threading.Thread(
            target=pump, args=(lambda: remote.recv(65536), conn.sendall), daemon=True
        ).start()
        pump(lambda: conn.recv(65536), remote.sendall)
        conn.close()
        forward.close()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        acceptor.join(timeout=2)
        listener.close()


# --- nodes and resource usage ---------------------------------------------------------------


def nodes() -> Table:
    """The cluster's nodes.  CLI: ``kubectl get nodes -o wide``"""
    rows = []
    for node in list_objects("nodes"):
        ready = "Ready" if _condition_true(node.raw, "Ready") else "NotReady"
        info = node.status.get("nodeInfo", {})
        address = next(
            (a["address"] for a in node.status.get("addresses", []) if a["type"] == "InternalIP"),
            "",
        )
        rows.append(
            [
                node.name,
                ready,
                info.get("kubeletVersion", ""),
                address,
                info.get("containerRuntimeVersion", ""),
                node.status.get("allocatable", {}).get("cpu", ""),
                node.status.get("allocatable", {}).get("memory", ""),
            ]
        )
    return Table(["name", "status", "kubelet", "internal-ip", "runtime", "cpu", "memory"], rows)


def summary(node: str | None = None) -> dict[str, Any]:
    """The kubelet's Summary API (CPU and memory per pod and container) through the API server.

    CLI: ``kubectl get --raw /api/v1/nodes/NODE/proxy/stats/summary``
    """
    name = node or list_objects("nodes")[0].name
    result = request(
        "GET",
        f"/api/v1/nodes/{name}/proxy/stats/summary",
        what=f"reading the kubelet summary of node {name}",
    )
    return dict(result)


def usage(ns: str | None = None, *, containers: bool = False) -> list[Usage]:
    """CPU (% of one core) and memory (MiB) of each pod in a namespace (or each container)."""
    namespace_name = ns or chapter().namespace
    found = []
    for node in list_objects("nodes"):
        for pod in summary(node.name).get("pods", []):
            if pod["podRef"]["namespace"] != namespace_name:
                continue
            parts = pod.get("containers", []) if containers else [pod]
            for part in parts:
                label = (
                    f"{pod['podRef']['name']}/{part['name']}"
                    if containers
                    else pod["podRef"]["name"]
                )
                cpu = (part.get("cpu") or {}).get("usageNanoCores", 0) / 1e7
                memory = (part.get("memory") or {}).get("workingSetBytes", 0) / 2**20
                found.append(Usage(label, round(cpu, 1), round(memory, 1)))
    return sorted(found, key=lambda u: u.name)


# --- a local proxy to the API server, like `kubectl proxy` ----------------------------------


@contextmanager
def api_proxy() -> Iterator[str]:
    """Serve the API server on ``http://127.0.0.1:PORT`` without certificates while the ``with``
    block runs, so plain HTTP (urllib, curl) can talk to it. It forwards GET requests, watches
    included, with your credentials. Returns the base URL.

    CLI: ``kubectl proxy --port=8001``

    >>> with api_proxy() as base:                                         # doctest: +SKIP
    ...     urllib.request.urlopen(base + "/api/v1/namespaces").read()
    """
    import http.server

    class Forward(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query_text = self.path.partition("?")
            query = dict(parse_qsl(query_text, keep_blank_values=True))
            try:
                upstream = _send(
                    "GET",
                    path,
                    query=query,
                    timeout=float(query.get("timeoutSeconds", 30)) + 10,
                )
            except ApiException as error:
                self.send_response(int(error.status or 502))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(
                    (error.body or b"")
                    if isinstance(error.body, bytes)
                    else str(error.body or "").encode()
                )
                return
            except Exception as error:  # the cluster is down: say so, as kubectl proxy does
                self.send_error(502, str(error)[:200])
                return
            self.send_response(upstream.status)
            self.send_header(
                "Content-Type", upstream.headers.get("Content-Type", "application/json")
            )
            self.end_headers()
            for chunk in upstream.stream(amt=None, decode_content=True):
                self.wfile.write(chunk)
                self.wfile.flush()
            upstream.release_conn()

        def log_message(self, *args: Any) -> None:  # keep the notebook quiet
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
