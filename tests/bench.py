"""Benchmarks of the local cluster and the helpers (`make bench`). Prints numbers; asserts nothing.

warm start to node Ready, idle memory of the cluster's processes, a 3-replica Deployment to
all replicas ready, a new image to rollout complete, and how long after a condition comes
true a wait helper returns.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
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
    from helpers import _k8s, k8s

    by_watch, by_transition = [], []
    for i in range(rounds):
        name = f"gap-{i}"
        seen: dict[str, float] = {}

        def watcher(pod_name: str = name, seen: dict[str, float] = seen) -> None:
            path = f"/api/v1/namespaces/{ns}/pods"
            for event in _k8s._watch(path, pod_name, "0", 30):
                if _k8s._satisfied({**event.get("object", {}), "kind": "Pod"}, "Ready"):
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
        assert ready is not None
        stamp = next(
            c["lastTransitionTime"] for c in ready.status["conditions"] if c["type"] == "Ready"
        )
        from datetime import datetime

        by_transition.append(
            returned_wall - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        )
    return by_watch, by_transition


def main() -> None:
    from helpers import _identity, k8s
    from tests.test_cluster import deployment

    os.environ.setdefault("COURSE_LEARNER", "bench")
    print("Local cluster")
    build = next(Path.home().glob(".cache/cloud-native-course/k8s-*/build-seconds"), None)
    line(
        "cold build of the binaries (last one, s)",
        build.read_text().strip() if build else "not recorded",
    )
    subprocess.run(["bash", str(REPO / "cluster/local/down.sh")], check=True, capture_output=True)
    started = time.monotonic()
    subprocess.run(["bash", str(REPO / "cluster/local/up.sh")], check=True, capture_output=True)
    line("warm start to node Ready (s)", f"{time.monotonic() - started:.1f}")
    subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "helpers", "images", "--load"],
        check=True,
        capture_output=True,
    )
    time.sleep(20)
    memory = rss_mib(COMPONENTS)
    line("idle resident memory, all cluster processes (MiB)", f"{sum(memory.values()):.0f}")
    line("  per process", json.dumps({k: round(v) for k, v in sorted(memory.items())}))

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
