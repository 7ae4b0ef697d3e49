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


def usage(ns: str | None = None, *, containers: bool = False) -> list[Usage]:
    """CPU (% of one core) and memory (MiB) of each pod in a namespace (or of each container),
    from the kubelet's Summary API, which needs no add-on.

    CLI: ``kubectl top pods -n NS`` (``--containers``), which asks metrics-server instead
    """
    where = namespace_for(resolve("pods"), ns)
    found = []
    for node in list_objects("nodes"):
        for pod in kubelet_summary(node.name).get("pods") or []:
            if pod["podRef"]["namespace"] != where:
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
