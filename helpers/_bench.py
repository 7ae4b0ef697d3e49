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

from ._cluster import cache_dir

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
    build = next(cache_dir().glob("k8s-*/build-seconds"), None)
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


def main(students: int = 30) -> None:
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
        scaling_and_updates(ns)
    finally:
        k8s.delete_namespace(ns, wait_until_gone=False)
    grading(students)


def scaling_and_updates(ns: str) -> None:
    """Chapters 04 and 05: scale 1 -> 10, and an update of 5 replicas under traffic, configured
    as lesson 05 teaches (web) and as it is often first written (fragile: no probe, no pause)."""
    from . import k8s

    k8s.apply(deployment("scale", 1, "course/web:v1"), ns)
    k8s.wait("deploy/scale", "Complete", ns, timeout=120)
    started = time.monotonic()
    k8s.scale("scale", 10, ns)
    k8s.wait("deploy/scale", "Complete", ns, timeout=240)
    line("scale 1 -> 10 replicas, all ready (s)", f"{time.monotonic() - started:.1f}")
    k8s.delete("deploy/scale", ns, wait_until_gone=False)
    manifests = REPO / "course" / "manifests"
    for name, manifest in (("web", "web-rolling.yaml"), ("fragile", "fragile-rolling.yaml")):
        k8s.apply(manifests / manifest, ns)
        k8s.scale(name, 5, ns)
        k8s.wait(f"deploy/{name}", "Complete", ns, timeout=120)
        probe = k8s.traffic(name, ns, per_second=20)
        time.sleep(3)
        started = time.monotonic()
        k8s.set_image(name, "web", "course/web:v2", ns)
        k8s.wait(f"deploy/{name}", "Complete", ns, timeout=180)
        line(f"update of 5 replicas, {name} (s)", f"{time.monotonic() - started:.1f}")
        time.sleep(3)
        counts, failed = probe.counts(), probe.failures
        probe.stop()
        line(f"failed requests during the update, {name}", f"{failed} of {sum(counts.values())}")


def grading(
    students: int = 30,
    chapters: tuple[str, ...] = ("01-containers", "03-pods"),
    jobs: int | None = None,
) -> None:
    """Grading a class: ``students`` students hand in each chapter (the solution and the planted
    wrong answers of tests/planted.py, in turn). The same folder is graded one submission at a
    time with nbgrader's own autograde (then the same cleanup the class run does, or chapter 03
    would fill the node's pod limit), and by the class run, N at a time (with feedback). Wall
    times, their ratio, peak memory (PSS of the grader and everything it started), and whether
    both gave the same grades."""
    import shutil
    import tempfile

    import nbformat

    from ._grading import course, run
    from ._grading.cleanup import learner_of, remove_learner_resources, wait_gone
    from ._grading.settings import default_jobs

    sys.path.insert(0, str(REPO))
    from tests.planted import PLANTED, Planted

    def pss_mib() -> float:
        children: dict[int, list[int]] = {}
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(parent, []).append(int(proc.name))
        total, todo, seen = 0, [os.getpid()], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            todo.extend(children.get(pid, []))
            try:
                for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if row.startswith("Pss:"):
                        total += int(row.split()[1])
            except OSError:
                continue
        return total / 1024

    cpu_used = [0.0]

    def machine_cpu_s() -> float:
        # Every process on the machine counts: the cluster and the engine work for the grader.
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # not idle, iowait
        return busy / os.sysconf("SC_CLK_TCK")

    def peak_while(work: Any) -> tuple[float, float, Any]:
        peak, done = [0.0], threading.Event()
        cpu_before = machine_cpu_s()

        def sample() -> None:
            while not done.wait(0.5):
                peak[0] = max(peak[0], pss_mib())

        sampler = threading.Thread(target=sample, daemon=True)
        started = time.monotonic()
        sampler.start()
        try:
            result = work()
        finally:
            done.set()
            sampler.join()
        cpu_used[0] = machine_cpu_s() - cpu_before
        return time.monotonic() - started, peak[0], result

    with tempfile.TemporaryDirectory(prefix="course-bench-grading-") as scratch:
        serial_root, parallel_root = Path(scratch) / "serial", Path(scratch) / "parallel"
        for root in (serial_root, parallel_root):
            for chapter in chapters:
                shutil.copytree(REPO / "solutions" / chapter, root / "solutions" / chapter)
        handed_in: list[tuple[str, str]] = []
        kind_of: dict[str, Planted] = {}
        for chapter in chapters:
            solution = next((REPO / "solutions" / chapter).glob("*.ipynb"))
            kinds = [Planted("the solution", {}), *PLANTED.get(chapter, [])]
            for number in range(students):
                student = f"bench-{number:02d}"
                notebook = nbformat.read(solution, as_version=4)  # type: ignore[no-untyped-call]
                kind = kinds[number % len(kinds)]
                answers = kind.answers
                kind_of[f"{student}/{chapter}"] = kind
                for cell in notebook.cells:
                    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                    if grade_id in answers:
                        cell.source = answers[grade_id]
                for root in (serial_root, parallel_root):
                    folder = root / "submitted" / student / chapter
                    folder.mkdir(parents=True)
                    nbformat.write(notebook, folder / solution.name)  # type: ignore[no-untyped-call]
                handed_in.append((student, chapter))
        n = len(handed_in)

        def one_at_a_time() -> dict[str, float | None]:
            got: dict[str, float | None] = {}
            for student, chapter in handed_in:
                try:
                    got[f"{student}/{chapter}"] = course.autograde(serial_root, chapter, student)[
                        "score"
                    ]
                except Exception as error:  # a failed submission is a number too
                    print(f"    serial: {student}/{chapter}: {type(error).__name__}", flush=True)
                    got[f"{student}/{chapter}"] = None
                remove_learner_resources(learner_of(student), timeout=None)
            return got

        def class_run() -> run.ClassRun:
            with open(os.devnull, "w") as quiet:
                return run.grade(parallel_root, jobs=jobs, out=quiet)

        line("grading: submissions (students x chapters)", f"{n} ({students} x {len(chapters)})")
        # Other work on this machine changes both numbers: the load before each run says how much.
        load = os.getloadavg()[0]
        serial_s, serial_peak, serial = peak_while(one_at_a_time)
        line("grading: one at a time, nbgrader autograde (s)", f"{serial_s:.0f} (load {load:.1f})")
        serial_cpu = cpu_used[0]
        load = os.getloadavg()[0]
        parallel_s, parallel_peak, graded = peak_while(class_run)
        line(
            f"grading: class run, {graded.jobs} at a time, with feedback (s)",
            f"{parallel_s:.0f} (load {load:.1f})",
        )
        line("grading: speed-up (one at a time / class run)", f"{serial_s / parallel_s:.2f}x")
        line(
            "grading: machine CPU per submission, one at a time / class run (s)",
            f"{serial_cpu / n:.1f} / {cpu_used[0] / n:.1f} of {os.cpu_count()} cores",
        )
        line("grading: peak memory, one at a time (MiB, PSS)", f"{serial_peak:.0f}")
        line(f"grading: peak memory, {graded.jobs} at a time (MiB, PSS)", f"{parallel_peak:.0f}")
        # A planted answer that switches a check off keeps its point with plain nbgrader; the
        # class run, whose tests run in the grader's kernel, does not give it. Any other
        # difference is a finding.
        expected: list[str] = []
        unexpected: list[str] = []
        for o in graded.outcomes:
            if o.graded and serial.get(o.key) == o.score:
                continue
            kind = kind_of[o.key]
            why = o.reason if not o.graded else (o.flags or "not flagged")
            detail = f"{o.key} ({kind.name}): {serial.get(o.key)} vs {o.score}, {why}"
            (expected if kind.flagged and o.graded else unexpected).append(detail)
        line("grading: graded differently, a check switched off", str(len(expected)))
        line("grading: graded differently, otherwise", str(len(unexpected)))
        for detail in unexpected:
            print(f"    {detail}", flush=True)
        if unexpected:  # the logs say why; keep them
            kept = Path(tempfile.mkdtemp(prefix="course-bench-kept-"))
            shutil.copytree(parallel_root / "grading", kept / "grading", dirs_exist_ok=True)
            print(f"    class run logs kept in {kept}/grading/logs", flush=True)
        left = wait_gone([ns for o in graded.outcomes for ns in o.namespaces], 60)
        line("grading: namespaces left after the class run", str(len(left)))
        line("grading: default jobs on this machine", str(default_jobs()))


if __name__ == "__main__":
    main()
