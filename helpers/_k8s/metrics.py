"""Nodes, and how much CPU and memory pods use, read from the kubelet's Summary API."""

from __future__ import annotations

from typing import Any

from .._output import Table
from .._types import Usage
from . import status
from .client import request
from .discovery import resolve
from .objects import list_objects, namespace_for


def nodes() -> Table:
    """The cluster's nodes.  CLI: ``kubectl get nodes -o wide``"""
    rows = []
    for node in list_objects("nodes"):
        info = node.status.get("nodeInfo") or {}
        address = next(
            (a["address"] for a in node.status.get("addresses") or [] if a["type"] == "InternalIP"),
            "",
        )
        allocatable = node.status.get("allocatable") or {}
        rows.append(
            [
                node.name,
                "Ready" if status.condition_true(node.raw, "Ready") else "NotReady",
                info.get("kubeletVersion", ""),
                address,
                info.get("containerRuntimeVersion", ""),
                allocatable.get("cpu", ""),
                allocatable.get("memory", ""),
            ]
        )
    return Table(["name", "status", "kubelet", "internal-ip", "runtime", "cpu", "memory"], rows)


def kubelet_summary(node: str) -> dict[str, Any]:
    """The kubelet's Summary API of one node, through the API server's node proxy.

    CLI: ``kubectl get --raw /api/v1/nodes/NODE/proxy/stats/summary``
    """
    result = request(
        "GET",
        f"/api/v1/nodes/{node}/proxy/stats/summary",
        what=f"reading the kubelet summary of node {node}",
    )
    return dict(result)


def millicores(quantity: str | None) -> int:
    """A CPU quantity in millicores: ``"250m"`` -> 250, ``"1"`` -> 1000, ``"1.5"`` -> 1500."""
    if not quantity:
        return 0
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)


def cpu_lines(ns: str | None = None, *, selector: str | None = None) -> dict[str, float]:
    """The pods' CPU requests and limits, as percent of one core, for the monitor's dashed
    lines: ``{"request 100m": 10.0, "limit 200m": 20.0}``."""
    lines: dict[str, float] = {}
    for pod in list_objects("pods", ns, selector=selector):
        for container in pod.spec.get("containers") or []:
            resources = container.get("resources") or {}
            for kind in ("requests", "limits"):
                value = millicores((resources.get(kind) or {}).get("cpu"))
                if value:
                    lines[f"{kind[:-1]} {value}m"] = value / 10
    return lines


def usage(
    ns: str | None = None, *, containers: bool = False, selector: str | None = None
) -> list[Usage]:
    """CPU (% of one core) and memory (MiB) of each pod in a namespace (or of each container),
    from the kubelet's Summary API, which needs no add-on. ``selector`` keeps some pods.

    CLI: ``kubectl top pods -n NS -l SELECTOR`` (``--containers``), which asks metrics-server
    """
    where = namespace_for(resolve("pods"), ns)
    wanted = {p.name for p in list_objects("pods", where, selector=selector)} if selector else None
    found = []
    for node in list_objects("nodes"):
        for pod in kubelet_summary(node.name).get("pods") or []:
            if pod["podRef"]["namespace"] != where:
                continue
            if wanted is not None and pod["podRef"]["name"] not in wanted:
                continue
            for part in (pod.get("containers") or []) if containers else [pod]:
                label = (
                    f"{pod['podRef']['name']}/{part['name']}"
                    if containers
                    else pod["podRef"]["name"]
                )
                cpu = (part.get("cpu") or {}).get("usageNanoCores", 0) / 1e7
                memory = (part.get("memory") or {}).get("workingSetBytes", 0) / 2**20
                found.append(Usage(label, round(cpu, 1), round(memory, 1)))
    return sorted(found, key=lambda u: u.name)
