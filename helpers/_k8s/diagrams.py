"""Diagrams drawn from the live cluster: its architecture, and what the containers of a pod share."""

from __future__ import annotations

from typing import Any

from .._output import Picture
from . import status
from .client import request
from .objects import get, list_objects


def _box(axes: Any, x: float, y: float, w: float, h: float, text: str, colour: str) -> None:
    from matplotlib.patches import FancyBboxPatch

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
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

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


def pod_diagram(pod: str, ns: str | None = None) -> Picture:
    """What the containers of a pod share, drawn from the live pod: one network namespace (one
    IP, one ``localhost``, one set of ports) and the volumes each container mounts. Each container
    keeps its own filesystem (from its image) and, by default, its own process list.

    CLI: ``kubectl get pod NAME -n NS -o yaml`` (spec.containers, spec.volumes, status.podIP)
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    found = get(pod if "/" in pod else f"pod/{pod}", ns)
    spec = found.spec
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    inits = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") != "Always"]
    containers = [(c, "init (runs first, to completion)") for c in inits]
    containers += [(c, "native sidecar") for c in sidecars]
    containers += [(c, "container") for c in spec.get("containers") or []]
    volumes = [v["name"] for v in spec.get("volumes") or [] if "projected" not in v]

    width = max(2, len(containers))
    figure = Figure(figsize=(2.6 * width + 0.6, 4.6), dpi=90)
    axes = figure.add_subplot()
    axes.set(xlim=(0, width), ylim=(0, 4.3))
    axes.axis("off")
    ip = found.status.get("podIP") or "no IP yet"
    axes.add_patch(
        FancyBboxPatch(
            (0.02, 0.05),
            width - 0.04,
            4.1,
            boxstyle="round,pad=0.02",
            facecolor="#f7f9fc",
            edgecolor="#7a99c9",
        )
    )
    axes.text(0.1, 3.95, f"pod {found.name}", fontsize=10, weight="bold")
    _box(
        axes,
        0.1,
        3.25,
        width - 0.2,
        0.5,
        f"shared network namespace: one IP ({ip}), one localhost, one set of ports",
        "#dfeaf8",
    )
    centres = {}
    for index, (container, role) in enumerate(containers):
        x = index + 0.08
        ports = ", ".join(str(p.get("containerPort")) for p in container.get("ports") or []) or "-"
        _box(
            axes,
            x,
            1.65,
            0.84,
            1.35,
            f"{container['name']}\n({role})\nimage {container['image']}\nports: {ports}\n"
            "own filesystem\nown processes",
            "#ffffff" if role == "container" else "#fff8e1",
        )
        centres[container["name"]] = x + 0.42
    for index, volume in enumerate(volumes):
        x = (index + 0.5) * width / max(1, len(volumes)) - 0.4
        _box(axes, x, 0.3, 0.8, 0.55, f"volume {volume}", "#eef7ea")
        for container, _ in containers:
            for mount in container.get("volumeMounts") or []:
                if mount["name"] == volume:
                    axes.annotate(
                        "",
                        xy=(x + 0.4, 0.85),
                        xytext=(centres[container["name"]], 1.65),
                        arrowprops={"arrowstyle": "-", "color": "#5a8a4a"},
                    )
                    axes.text(
                        (x + 0.4 + centres[container["name"]]) / 2,
                        1.2,
                        mount["mountPath"],
                        fontsize=7,
                        ha="center",
                        color="#3d6b30",
                    )
    if not volumes:
        axes.text(
            width / 2,
            0.55,
            "no volumes: the containers share no files",
            ha="center",
            fontsize=8,
            color="#777777",
        )
    figure.tight_layout()
    return Picture.of(figure)
