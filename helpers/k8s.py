"""Kubernetes for the course: a few verbs, each the REST request (and kubectl command) it names.

>>> from helpers import k8s
>>> ns = k8s.namespace()                                # doctest: +SKIP
>>> k8s.apply("manifests/two-containers.yaml", ns)      # doctest: +SKIP
>>> k8s.wait("pod/two-containers", "Ready", ns)         # doctest: +SKIP
>>> k8s.logs("two-containers", ns, container="web")     # doctest: +SKIP

**Namespaces.** A call about namespaced objects takes ``ns``. Leave it out and it uses your
namespace for this chapter, the one ``k8s.namespace()`` returns (``alice-03-pods``). Listing calls
(``list_objects``, ``events``) look across every namespace only with ``all_namespaces=True``.
Cluster-wide kinds (nodes, namespaces, persistent volumes, storage classes) ignore ``ns``.

**Kinds.** Wherever a call takes ``"kind/name"`` or a kind, any name kubectl accepts works:
``pod``, ``pods``, ``po``, ``deploy``, ``deployments.apps``, ``pvc``, ``sts``, ... They are read
from the cluster (``kubectl api-resources``), so kinds the cluster adds work too.

**Errors.** Every failure is a ``helpers.errors.CourseError`` that says what happened and what
to do next; the client library's own exceptions never reach you.

The code is in ``helpers/_k8s/``, one module per concern.
"""

from ._cluster import backend, load_image, volumes_folder
from ._k8s.client import request
from ._k8s.diagrams import architecture, pod_diagram
from ._k8s.metrics import cpu_lines as _cpu_lines
from ._k8s.metrics import nodes, usage
from ._k8s.network import api_proxy, port_forward
from ._k8s.objects import (
    Object,
    annotate,
    apply,
    delete,
    delete_namespace,
    exists,
    get,
    list_objects,
    namespace,
)
from ._k8s.pods import events, evict, exec, logs, pods
from ._k8s.traffic import endpoints, traffic
from ._k8s.views import claims_chart, pod_map, restart_chart, rollout_chart
from ._k8s.waiting import wait
from ._k8s.workloads import (
    rollback,
    rollout_history,
    rollout_pause,
    rollout_restart,
    rollout_resume,
    scale,
    set_image,
)
from ._monitor import Monitor as _Monitor
from ._monitor import live as _live


def monitor(
    ns: str | None = None,
    *,
    selector: str | None = None,
    containers: bool = False,
    interval: float = 2.0,
) -> _Monitor:
    """A live CPU and memory plot of the pods in a namespace (``selector`` keeps some), from the
    kubelet's Summary API, with the pods' CPU requests and limits as dashed lines. It starts at
    once; ``.stop()`` ends it and leaves the last picture.

    CLI: ``kubectl top pods -n NS -l SELECTOR`` (repeatedly; it asks metrics-server)
    """
    return _live(
        lambda: usage(ns, containers=containers, selector=selector),
        title=f"pods in {ns}" + (f" ({selector})" if selector else ""),
        interval=interval,
        cpu_lines=_cpu_lines(ns, selector=selector),
    )


__all__ = [
    "Object",
    "annotate",
    "api_proxy",
    "apply",
    "architecture",
    "backend",
    "claims_chart",
    "delete",
    "delete_namespace",
    "endpoints",
    "events",
    "evict",
    "exec",
    "exists",
    "get",
    "list_objects",
    "load_image",
    "logs",
    "monitor",
    "namespace",
    "nodes",
    "pod_diagram",
    "pod_map",
    "pods",
    "port_forward",
    "request",
    "restart_chart",
    "rollback",
    "rollout_chart",
    "rollout_history",
    "rollout_pause",
    "rollout_restart",
    "rollout_resume",
    "scale",
    "set_image",
    "traffic",
    "usage",
    "volumes_folder",
    "wait",
]
