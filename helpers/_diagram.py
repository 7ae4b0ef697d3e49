"""Draw the cluster's architecture from what the API server reports right now."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ._k8s import status
from ._k8s.client import request
from ._k8s.objects import list_objects
from ._output import Picture


def _box(axes: Any, x: float, y: float, w: float, h: float, text: str, colour: str) -> None:
    axes.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0.02",
            facecolor=colour,
            edgecolor="#333333",
            linewidth=1,
        )
    )
    axes.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8, wrap=True)


def _arrow(axes: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    axes.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "<->", "color": "#555555"})


def architecture(max_pods: int = 8) -> Picture:
    """A diagram of the control plane, the nodes and their pods, drawn from the live cluster.

    Each box is something the API server reported: its version, the etcd check in /readyz, the
    scheduler's and controller manager's leader leases, each node's kubelet and container runtime,
    and the pods running on each node.

    CLI: (the same facts) ``kubectl get --raw '/readyz?verbose'``, ``kubectl get leases -n
    kube-system``, ``kubectl get nodes -o wide``, ``kubectl get pods -A -o wide``
    """
    version = request("GET", "/version").get("gitVersion", "?")
    ready_checks = str(request("GET", "/readyz", query={"verbose": "true"}))
    etcd_ok = "[+]etcd ok" in ready_checks
    holders = {
        lease.name: (lease.spec.get("holderIdentity") or "?").split("_")[0]
        for lease in list_objects("leases", "kube-system")
    }
    nodes = list_objects("nodes")
    pods = list_objects("pods", all_namespaces=True)

    figure = Figure(figsize=(10, 3.0 + 1.7 * len(nodes)), dpi=90)
    axes = figure.add_subplot()
    height = 4 + 2.2 * len(nodes)
    axes.set(xlim=(0, 10), ylim=(0, height))
    axes.axis("off")
    top = height - 3.2
    axes.add_patch(
        FancyBboxPatch(
            (0.1, top - 0.1),
            9.8,
            3.0,
            boxstyle="round,pad=0.05",
            facecolor="#eef3fb",
            edgecolor="#7a99c9",
        )
    )
    axes.text(0.25, top + 2.65, "control plane", fontsize=10, weight="bold")
    _box(axes, 3.6, top + 0.9, 2.8, 1.1, f"kube-apiserver\n{version}\n(the only door)", "#ffffff")
    _box(
        axes,
        0.4,
        top + 0.9,
        2.4,
        1.1,
        "etcd\n" + ("healthy" if etcd_ok else "not ready"),
        "#ffffff" if etcd_ok else "#f8d0d0",
    )
    for x, name in ((7.2, "kube-scheduler"), (7.2, "kube-controller-manager")):
        y = top + 1.55 if name == "kube-scheduler" else top + 0.25
        holder = holders.get(name)
        _box(
            axes,
            x,
            y,
            2.5,
            0.9,
            f"{name}\nleader: {holder}" if holder else f"{name}\n(no lease)",
            "#ffffff" if holder else "#f8d0d0",
        )
        _arrow(axes, (6.4, top + 1.45), (x, y + 0.45))
    _arrow(axes, (2.8, top + 1.45), (3.6, top + 1.45))

    for index, node in enumerate(nodes):
        y = top - 2.2 * (index + 1)
        info = node.status.get("nodeInfo", {})
        ready = status.condition_true(node.raw, "Ready")
        axes.add_patch(
            FancyBboxPatch(
                (0.1, y),
                9.8,
                1.9,
                boxstyle="round,pad=0.05",
                facecolor="#f1f8ee" if ready else "#f8d0d0",
                edgecolor="#7aa86a",
            )
        )
        axes.text(
            0.25,
            y + 1.6,
            f"node {node.name} ({'Ready' if ready else 'NotReady'})",
            fontsize=10,
            weight="bold",
        )
        _box(
            axes,
            0.4,
            y + 0.6,
            2.4,
            0.75,
            f"kubelet {info.get('kubeletVersion', '')}\n{info.get('containerRuntimeVersion', '')}",
            "#ffffff",
        )
        _box(axes, 0.4, y + 0.1, 2.4, 0.35, "kube-proxy (Service routing)", "#ffffff")
        _arrow(axes, (1.6, y + 1.35), (4.4, top + 0.9))
        on_node = [p for p in pods if p.spec.get("nodeName") == node.name]
        for slot, pod in enumerate(on_node[:max_pods]):
            column, row = slot % 4, slot // 4
            _box(
                axes,
                3.2 + column * 1.68,
                y + 0.75 - row * 0.55,
                1.55,
                0.42,
                f"{pod.name[:16]}\n{pod.namespace[:16] if pod.namespace else ''}",
                "#fff8e1",
            )
        if len(on_node) > max_pods:
            axes.text(
                9.8, y + 0.05, f"+{len(on_node) - max_pods} more pods", ha="right", fontsize=8
            )
        if not on_node:
            axes.text(5.5, y + 0.7, "no pods", fontsize=8, color="#777777")
    axes.set_ylim(top - 2.2 * len(nodes) - 0.2, height)  # no empty band below the last node
    figure.tight_layout()
    return Picture.of(figure)
