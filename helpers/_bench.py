"""Benchmarks (``make bench``, ``python -m helpers bench``): prints numbers, asserts nothing.

On the cluster ``make`` chose (CLUSTER=local|kind|kubeconfig): a 3-replica Deployment to all
replicas ready, a new image to rollout complete, and how long after a condition comes true
``wait`` returns. On the local cluster also: warm start to node Ready, and the idle memory of
its processes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "cloud-native-course"))
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "containerd",
)


def line(name: str, value: str) -> None:
    print(f"  {name:<46} {value}", flush=True)


def rss_mib(names: tuple[str, ...]) -> dict[str, float]:
    found: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            # The kernel keeps only 15 characters of a process name ("kube-controller").
            comm = next((name for name in names if name[:15] == comm), "")
            if comm:
                rss = next(
                    int(line.split()[1])
                    for line in (proc / "status").read_text().splitlines()
                    if line.startswith("VmRSS:")
                )
                found[comm] = found.get(comm, 0.0) + rss / 1024
        except (OSError, StopIteration):
            continue
    return found


def wait_gap(ns: str, rounds: int = 5) -> tuple[list[float], list[float]]:
    """How long after a pod turns Ready does wait() return? Measured two ways:
    against an independent watch of the same pod (precise), and against the Ready condition's
    lastTransitionTime written by the kubelet (whole seconds, so an upper bound)."""
    from . import k8s
    from ._k8s.waiting import _watch, satisfied

    by_watch, by_transition = [], []
    for i in range(rounds):
        name = f"gap-{i}"
        seen: dict[str, float] = {}

        def watcher(pod_name: str = name, seen: dict[str, float] = seen) -> None:
            path = f"/api/v1/namespaces/{ns}/pods"
            for event in _watch(path, pod_name, "0", 30):
                if satisfied({**event.get("object", {}), "kind": "Pod"}, "Ready"):
                    seen["ready"] = time.monotonic()
                    return

        thread = threading.Thread(target=watcher, daemon=True)
        thread.start()
        time.sleep(0.3)  # the watch is open before the pod exists
        k8s.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "web", "image": "course/web:v1"}],
                },
            },
            ns,
        )
        ready = k8s.wait(f"pod/{name}", "Ready", ns, timeout=60)
        returned, returned_wall = time.monotonic(), time.time()
        thread.join(timeout=10)
        if "ready" in seen:
            by_watch.append(returned - seen["ready"])
        stamp = next(
            c["lastTransitionTime"] for c in ready.status["conditions"] if c["type"] == "Ready"
        )
        from datetime import datetime

        by_transition.append(
            returned_wall - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        )
    return by_watch, by_transition


def deployment(name: str, replicas: int, image: str) -> dict[str, Any]:
    labels = {"app": name}
    probe = {"httpGet": {"path": "/healthz", "port": 80}, "periodSeconds": 1}
    container = {"name": "web", "image": image, "readinessProbe": probe}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]},
            },
        },
    }


def local_cluster() -> None:
    """Start time and memory of the local cluster (it is stopped and started again)."""
    build = next(CACHE.glob("k8s-*/build-seconds"), None)
    line("cold build of the binaries (last one, s)", build.read_text().strip() if build else "?")
    subprocess.run(["bash", str(REPO / "cluster/local/down.sh")], check=True, capture_output=True)
    started = time.monotonic()
    subprocess.run(["bash", str(REPO / "cluster/local/up.sh")], check=True, capture_output=True)
    line("warm start to node Ready (s)", f"{time.monotonic() - started:.1f}")
    subprocess.run(
        [sys.executable, "-m", "helpers", "images", "--load"], check=True, capture_output=True
    )
    time.sleep(20)
    memory = rss_mib(COMPONENTS)
    line("idle resident memory, all cluster processes (MiB)", f"{sum(memory.values()):.0f}")
    line("  per process", json.dumps({k: round(v) for k, v in sorted(memory.items())}))


def main() -> None:
    from . import _identity, k8s
    from ._cluster import backend

    os.environ.setdefault("COURSE_LEARNER", "bench")
    print(f"Cluster: {backend()}")
    if backend() == "local":
        local_cluster()
    _identity.chapter("99-bench")
    ns = k8s.namespace()
    try:
        started = time.monotonic()
        k8s.apply(deployment("bench", 3, "course/web:v1"), ns)
        k8s.wait("deploy/bench", "Complete", ns, timeout=120)
        line("3-replica Deployment applied -> all ready (s)", f"{time.monotonic() - started:.1f}")
        started = time.monotonic()
        k8s.set_image("deploy/bench", "web", "course/web:v2", ns)
        k8s.wait("deploy/bench", "Complete", ns, timeout=120)
        line("new image -> rollout complete (s)", f"{time.monotonic() - started:.1f}")
        by_watch, by_transition = wait_gap(ns)
        line(
            "wait() return after an independent watch saw Ready (s)",
            f"mean {statistics.mean(by_watch):+.3f}, max {max(by_watch):+.3f} ({len(by_watch)} pods)",
        )
        line(
            "wait() return after Ready's lastTransitionTime (s)",
            f"max {max(by_transition):.2f} (the timestamp has 1 s resolution)",
        )
    finally:
        k8s.delete_namespace(ns, wait_until_gone=False)


if __name__ == "__main__":
    main()
