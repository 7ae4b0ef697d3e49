"""Kubernetes for the course: a few verbs, each the REST call (and kubectl command) it names.

>>> from helpers import k8s
>>> ns = k8s.namespace("03-pods")                       # doctest: +SKIP
>>> k8s.apply("manifests/two-containers.yaml", ns)      # doctest: +SKIP
>>> k8s.wait("pod/two-containers", "Ready", ns)         # doctest: +SKIP
>>> k8s.logs("two-containers", ns, container="web")     # doctest: +SKIP
"""

from ._cluster import backend, load_image
from ._diagram import architecture
from ._k8s import (
    Object,
    api_proxy,
    apply,
    delete,
    delete_namespace,
    events,
    exec,
    exists,
    fetch,
    get,
    list_objects,
    logs,
    namespace,
    nodes,
    pod_status,
    pods,
    port_forward,
    raw,
    request,
    rollback,
    rollout_history,
    scale,
    set_image,
    summary,
    usage,
    wait,
)
from ._monitor import Monitor as _Monitor
from ._monitor import live as _live


def monitor(ns: str | None = None, *, containers: bool = False, interval: float = 2.0) -> _Monitor:
    """A live CPU and memory plot of the pods in a namespace, from the kubelet's Summary API.

    CLI (with metrics-server): ``kubectl top pods -n NS``
    """
    return _live(lambda: usage(ns, containers=containers), title=f"pods in {ns}", interval=interval)


__all__ = [
    "Object",
    "api_proxy",
    "apply",
    "architecture",
    "backend",
    "delete",
    "delete_namespace",
    "events",
    "exec",
    "exists",
    "fetch",
    "get",
    "list_objects",
    "load_image",
    "logs",
    "monitor",
    "namespace",
    "nodes",
    "pod_status",
    "pods",
    "port_forward",
    "raw",
    "request",
    "rollback",
    "rollout_history",
    "scale",
    "set_image",
    "summary",
    "usage",
    "wait",
]
