"""The README's commands, run the way a user runs them: `make ...` in the course folder, as the
user this machine has (root here), with no display. The cluster-down/up cycle runs last."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import helpers
from helpers import _identity, docker

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.docker, pytest.mark.cluster]


def make(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in the course folder, with the cluster the suite runs on."""
    user_env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    cluster = os.environ.get("COURSE_CLUSTER", "local")
    return subprocess.run(
        ["make", "--no-print-directory", *args, f"CLUSTER={cluster}"],
        cwd=REPO,
        env={**user_env, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_make_help_lists_the_commands_the_readme_names() -> None:
    done = make("help")
    assert done.returncode == 0, done.stderr
    readme = (REPO / "README.md").read_text()
    for target in set(re.findall(r"`make ([a-z-]+)", readme)):
        assert f"make {target} " in done.stdout, (
            f"`make {target}` is in the README but not in make help"
        )


def test_make_doctor_passes_on_a_ready_machine() -> None:
    done = make("doctor")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "✓" in done.stdout and "Cluster" in done.stdout


def test_make_cluster_twice_is_quick_and_status_answers() -> None:
    started = time.monotonic()
    first = make("cluster")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    second = make("cluster")
    assert second.returncode == 0 and time.monotonic() - started < 120
    status = make("cluster-status")
    assert status.returncode == 0 and "Ready" in status.stdout, status.stdout + status.stderr


@pytest.fixture
def lab_port() -> Iterator[int]:
    yield helpers.free_port()


def test_make_lab_serves_the_course_as_root_without_a_display(lab_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    cluster = os.environ.get("COURSE_CLUSTER", "local")
    lab = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_PORT={lab_port}", f"CLUSTER={cluster}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so the test can stop make and JupyterLab together
    )
    try:
        token, log = None, ""
        deadline = time.monotonic() + 180
        while token is None and time.monotonic() < deadline and lab.poll() is None:
            line = lab.stdout.readline() if lab.stdout else ""
            log += line
            found = re.search(rf"http://127\.0\.0\.1:{lab_port}/lab\?token=(\w+)", line)
            token = found.group(1) if found else None
        assert token, f"JupyterLab did not start (as root, no display):\n{log[-3000:]}"
        url = f"http://127.0.0.1:{lab_port}/api/contents/course?token={token}"
        listing = json.loads(helpers.fetch(url, timeout=30))  # retried until the server answers
        lessons = sorted(
            item["name"] for item in listing["content"] if item["name"].endswith(".ipynb")
        )
        assert lessons == sorted(p.name for p in (REPO / "course").glob("[0-9][0-9]-*.ipynb"))
    finally:
        os.killpg(lab.pid, signal.SIGINT)
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()


def test_make_exercises_regenerates_exactly_what_is_committed() -> None:
    done = make("exercises")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    changed = subprocess.run(
        ["git", "status", "--porcelain", "exercises"], cwd=REPO, capture_output=True, text=True
    ).stdout
    assert not changed, f"make exercises changed the committed release:\n{changed}"


def test_make_classroom_then_classroom_down(tmp_path: Path, no_grading_running: None) -> None:
    roster = tmp_path / "students.csv"
    student = f"m{int(time.time()) % 100000}-ada"
    roster.write_text(f"id\n{student}\n")
    up = make("classroom", f"ROSTER={roster}", timeout=300)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    kubeconfig = REPO / "classroom" / student / "kubeconfig"
    assert kubeconfig.is_file() and "token:" in kubeconfig.read_text()
    down = make("classroom-down", timeout=300)
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    assert not kubeconfig.exists()
    left = subprocess.run(
        [
            str(REPO / ".venv/bin/python"),
            "-c",
            "from helpers import k8s; print(len([n for n in "
            "k8s.list_objects('namespaces', selector='course.classroom in (student, shared)') "
            "if n.status.get('phase') != 'Terminating']))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert left.stdout.strip() == "0", left.stdout + left.stderr


def test_cleanup_removes_only_the_current_learners_work(docker_engine: None) -> None:
    for learner in ("pytest-alice", "pytest-bob"):
        os.environ["COURSE_LEARNER"] = learner
        _identity.chapter("01-containers")
        docker.cleanup()
        docker.run("course/web:v1", "web")
    cleaned = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "helpers", "cleanup"],
        cwd=REPO,
        env={**os.environ, "COURSE_LEARNER": "pytest-alice"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    os.environ["COURSE_LEARNER"] = "pytest-alice"
    assert docker.ps(all=True).column("name") == [], "alice's container is gone"
    os.environ["COURSE_LEARNER"] = "pytest-bob"
    assert docker.ps(all=True).column("name") == ["web"], "bob's container is untouched"
    docker.cleanup()


def test_make_clean_keeps_grading_and_clean_grading_asks_first(tmp_path: Path) -> None:
    """make clean removes the Python environment and keeps what an instructor keeps; deleting the
    grading is make clean-grading, which refuses without a yes and keeps classroom/."""
    checkout = tmp_path / "course"
    subprocess.run(["git", "clone", "-q", str(REPO), str(checkout)], check=True)
    kept = {
        "submitted/alice/01-containers/01-containers.ipynb": "{}",
        "autograded/alice/01-containers/01-containers.ipynb": "{}",
        "feedback/alice/01-containers/01-containers.html": "<html></html>",
        "grading/state.json": "{}",
        "gradebook.db": "not empty",
        "grades.csv": "student,score\nalice,3\n",
        "classroom/alice/kubeconfig": "apiVersion: v1",
    }
    for name, text in kept.items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(text)
    (checkout / ".venv/bin").mkdir(parents=True)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", *args],
            cwd=checkout,
            stdin=subprocess.DEVNULL,  # no terminal: nobody can answer the question
            capture_output=True,
            text=True,
            check=False,
        )

    cleaned = run("clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (checkout / ".venv").exists(), "make clean removes the Python environment"
    changed = [n for n, text in kept.items() if (checkout / n).read_text() != text]
    assert changed == [], f"make clean deleted or changed {changed}"

    refused = run("clean-grading")
    assert refused.returncode != 0 and "nothing deleted" in refused.stdout, refused.stdout
    assert all((checkout / n).exists() for n in kept), "no yes, nothing deleted"

    confirmed = run("clean-grading", "CONFIRM=yes")
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    left = sorted(n.split("/")[0] for n in kept if (checkout / n).exists())
    assert left == ["classroom"], "clean-grading deletes the grading and only that"
    assert (checkout / "course").is_dir(), "the course itself stays"
    again = run("clean-grading", "CONFIRM=yes")
    assert again.returncode == 0 and "nothing to delete" in again.stdout


@pytest.mark.lifecycle
def test_make_cluster_down_then_make_cluster_brings_it_back() -> None:
    from helpers import k8s
    from helpers._k8s import client

    down = make("cluster-down", timeout=300)
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    client.reconnect()
    with pytest.raises(helpers.errors.ClusterUnreachable):
        k8s.request("GET", "/version")
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    assert not [m for m in mounts if m.startswith("/var/lib/kubelet")], "pod volumes left mounted"
    # Nothing running, nothing mounted: the case that once stopped early under pipefail.
    again = make("cluster-down", timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    up = make("cluster", timeout=900)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    client.reconnect()
    assert k8s.request("GET", "/version")["gitVersion"].startswith("v1.")
    for addon in ("coredns", "metrics-server"):
        k8s.wait(f"deployment/{addon}", "Available", "kube-system", timeout=120)
    k8s.wait("deployment/local-path-provisioner", "Available", "local-path-storage", timeout=120)
