"""Pods: the pods table, logs, exec, and events."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.stream import stream as k8s_stream

from .._errors import KubernetesError, WaitTimeout
from .._output import Table
from .._types import ExecResult
from . import status
from .client import api, api_errors, request
from .discovery import resolve, split_target
from .objects import find, list_objects, namespace_for


def _pod_name(pod: str) -> str:
    return pod.split("/", 1)[-1]  # "web" and "pod/web" both work


def _namespace(ns: str | None) -> str:
    return str(namespace_for(resolve("pods"), ns))


def pods(ns: str | None = None, *, selector: str | None = None) -> Table:
    """The pods of a namespace as a table.  CLI: ``kubectl get pods -n NS -l SELECTOR -o wide``"""
    rows = [
        [
            pod.name,
            status.ready_text(pod.raw),
            status.pod_status(pod.raw),
            status.restarts(pod.raw),
            pod.status.get("podIP", ""),
            pod.spec.get("nodeName", ""),
            status.age(pod.metadata.get("creationTimestamp")),
        ]
        for pod in list_objects("pods", ns, selector=selector)
    ]
    return Table(["name", "ready", "status", "restarts", "ip", "node", "age"], rows)


def events(
    ns: str | None = None,
    *,
    about: str | None = None,
    limit: int = 20,
    all_namespaces: bool = False,
) -> Table:
    """Recent events, oldest first; ``about="pod/web"`` keeps those of that object as it is now
    (not those of an earlier object with the same name).

    CLI: ``kubectl events -n NS --for pod/web``
    """
    query: dict[str, Any] = {}
    uid = None
    if about:
        resource, name = split_target(about)
        query["fieldSelector"] = f"involvedObject.kind={resource.kind},involvedObject.name={name}"
        current = find(about, ns)
        uid = current.metadata.get("uid") if current else None
    path = "/api/v1/events" if all_namespaces else f"/api/v1/namespaces/{_namespace(ns)}/events"
    items = request("GET", path, query=query, what="listing events").get("items") or []
    if uid:
        items = [e for e in items if (e.get("involvedObject") or {}).get("uid") in (uid, None)]

    def when(event: Mapping[str, Any]) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp")
            or ""
        )

    rows = [
        [
            status.age(when(e)),
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
    """What a container wrote to stdout and stderr (``previous=True``: its last run's).

    CLI: ``kubectl logs POD -n NS -c CONTAINER --previous --tail N``
    """
    name = _pod_name(pod)
    query = {
        "container": container,
        "previous": "true" if previous else None,
        "tailLines": tail,
    }
    result = request(
        "GET",
        f"/api/v1/namespaces/{_namespace(ns)}/pods/{name}/log",
        query=query,
        what=f"reading the logs of pod/{name}" + (f" container {container}" if container else ""),
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
    """Run a command in a pod's container and wait for it (at most ``timeout`` s).
    A string runs through ``sh -c``.

    CLI: ``kubectl exec POD -n NS -c CONTAINER -- sh -c 'COMMAND'``
    """
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    name = _pod_name(pod)
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
    what = f"exec in pod/{name}"
    with api_errors(what):
        core = k8s_client.CoreV1Api(api())
        session = k8s_stream(core.connect_get_namespaced_pod_exec, name, _namespace(ns), **options)
        try:
            session.run_forever(timeout=timeout)
            finished = not session.is_open()
            stdout, stderr, code = session.read_stdout(), session.read_stderr(), session.returncode
        finally:
            session.close()
    if not finished:
        raise WaitTimeout(
            f"{what}: {argv} did not finish within {timeout:g} s (it may still run in the pod).",
            hint="Pass a larger timeout=, or make the command end on its own (timeout N CMD).",
            output=stdout + stderr,
        )
    return ExecResult(argv, int(code if code is not None else -1), stdout, stderr)


def evict(pod: str, ns: str | None = None) -> bool:
    """Ask the API server to evict a pod, as ``kubectl drain`` does for every pod of a node.
    Unlike a delete, an eviction is refused while it would take more pods down than a
    PodDisruptionBudget allows. Returns True when the pod is being evicted, False when a budget
    refused it (the API server's reason is printed; drain waits 5 s and asks again).

    CLI: ``kubectl create --raw /api/v1/namespaces/NS/pods/POD/eviction -f eviction.json``
    (``kubectl drain NODE`` sends one for each pod on NODE)
    """
    name = _pod_name(pod)
    where = _namespace(ns)
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": where},
    }
    try:
        request(
            "POST",
            f"/api/v1/namespaces/{where}/pods/{name}/eviction",
            body=eviction,
            what=f"evicting pod/{name}",
        )
    except KubernetesError as error:
        if "disruption budget" not in str(error):
            raise
        reason = error.message.split("HTTP 429. ", 1)[-1]
        print(f"✗ pod/{name} not evicted (429 Too Many Requests): {reason}")
        return False
    print(f"✓ pod/{name} evicted")
    return True
