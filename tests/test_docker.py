"""Integration tests against the real Docker engine."""

from __future__ import annotations

import threading
import time

import pytest

import helpers
from helpers import check, docker
from helpers._errors import (
    CheckFailed,
    ContainerNotFound,
    DockerNotRunning,
    ImageNotFound,
    NameTaken,
    PortInUse,
)

pytestmark = pytest.mark.docker


def live_view_threads() -> int:
    """Background threads of live views (samplers' short-lived helper threads do not count)."""
    return sum(1 for t in threading.enumerate() if t.name == "course-live-view")


def _names(all: bool = True) -> list[str]:
    return docker.ps(all=all).column("name")


def test_run_list_exec_logs_stop_remove(chapter01: None) -> None:
    port = helpers.free_port()
    started = docker.run("course/web:v1", "web", ports={80: port}, env={"MESSAGE": "hi there"})
    assert started.name == "pytest-01-web" and started.running
    assert started.ports == {80: ("127.0.0.1", port)}
    assert _names() == ["web"]
    page = helpers.fetch(f"http://127.0.0.1:{port}/")
    assert "Course web app v1" in page and "hi there" in page
    processes = docker.exec("web", "ps").stdout
    assert "1 root     {start.sh}" in processes or "1 root     /bin/sh /start.sh" in processes, (
        processes
    )
    assert "httpd -f -vv -p 80" in processes
    assert docker.exec("web", ["sh", "-c", "exit 3"]).returncode == 3
    assert docker.logs("web").count("response:200") == 1
    assert docker.stop("web").status == "exited"
    docker.rm("web")
    assert _names() == []


def test_build_gives_the_image_the_learners_prefix_and_labels(chapter01: None) -> None:
    tag = docker.build(".", "hello:v1", dockerfile="FROM course/web:v2\nENV MESSAGE=built\n")
    assert tag == "pytest-01-hello:v1"
    image = docker.image("hello:v1")
    assert image.env["MESSAGE"] == "built" and image.env["VERSION"] == "v2"
    assert image.labels["course.learner"] == "pytest"
    assert image.based_on("course/web:v2") and not image.based_on("course/web:v1")
    assert "pytest-01-hello:v1" in docker.cleanup()
    with pytest.raises(ImageNotFound):
        docker.image("hello:v1")


def test_stats_reports_a_busy_container(chapter01: None) -> None:
    docker.run("course/web:v1", "busy", command=["sh", "-c", "while :; do :; done"])
    usage = docker.stats("busy")
    assert usage.cpu_percent > 30, usage
    assert usage.memory_mib >= 0


def test_name_taken_offers_the_fix_and_leaves_nothing_behind(chapter01: None) -> None:
    docker.run("course/web:v1", "web")
    with pytest.raises(NameTaken) as caught:
        docker.run("course/web:v1", "web")
    assert 'docker.rm("web", force=True)' in str(caught.value)
    assert _names() == ["web"]


def test_port_taken_names_the_holder_and_leaves_nothing_behind(chapter01: None) -> None:
    port = helpers.free_port()
    docker.run("course/web:v1", "first", ports={80: port})
    with pytest.raises(PortInUse) as caught:
        docker.run("course/web:v1", "second", ports={80: port})
    assert "pytest-01-first" in str(caught.value) and "free_port" in str(caught.value)
    assert _names() == ["first"]


def test_unknown_image_is_never_pulled_and_leaves_nothing_behind(chapter01: None) -> None:
    with pytest.raises(ImageNotFound) as caught:
        docker.run("nginx:latest", "nginx-web")
    assert "make images" in str(caught.value)
    assert _names() == []


def test_unknown_container_lists_yours(chapter01: None) -> None:
    docker.run("course/web:v1", "web")
    with pytest.raises(ContainerNotFound, match="Your containers: web"):
        docker.logs("nope")


def test_stopped_daemon_says_how_to_start_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from helpers._docker import engine

    engine.reconnect()
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/no-docker-here.sock")
    try:
        with pytest.raises(DockerNotRunning) as caught:
            engine.client()
        assert "make docker" in str(caught.value) or "Docker Desktop" in str(caught.value)
    finally:
        monkeypatch.delenv("DOCKER_HOST")
        engine.reconnect()


def test_checks_explain_what_was_expected_and_found(chapter01: None) -> None:
    docker.run(
        "course/web:v1", "web", ports={80: ("0.0.0.0", helpers.free_port())}, labels={"tier": "db"}
    )
    with pytest.raises(CheckFailed, match=r"expected label tier=frontend, found tier=db"):
        check.container_labels("web", {"tier": "frontend"})
    with pytest.raises(CheckFailed, match="every network interface"):
        check.port_published("web", 80)
    with pytest.raises(CheckFailed, match="expected image course/web:v2"):
        check.container_running("web", image="course/web:v2")
    with pytest.raises(CheckFailed, match=r"no such|You have no container"):
        check.container_running("ghost")


def test_monitor_samples_in_a_thread_and_stops_cleanly(chapter01: None) -> None:
    docker.run("course/web:v1", "busy", command=["sh", "-c", "while :; do :; done"])
    monitor = docker.monitor("busy", interval=0.3)
    assert monitor.running and live_view_threads() == 1
    time.sleep(1.5)
    monitor.stop()
    assert not monitor.running and live_view_threads() == 0
    points = monitor.series("busy")
    assert len(points) >= 3
    assert max(cpu for _, cpu in points) > 30
    assert monitor.image.value[:4] == b"\x89PNG"
    state = monitor.widget.get_state()
    assert state["children"], "the widget holds the buttons and the plot"
    count = len(points)
    time.sleep(0.7)
    assert len(monitor.series("busy")) == count, "no samples after stop()"


def test_monitor_starts_no_thread_while_grading(
    chapter01: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker.run("course/web:v1", "web")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monitor = docker.monitor("web", interval=0.1)
    assert live_view_threads() == 0 and not monitor.running
    assert len(monitor.history) >= 3
    monitor.start_button.click()
    assert live_view_threads() == 0
