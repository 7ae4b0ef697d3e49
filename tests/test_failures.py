"""The engine and the API server really failing: stopped, or resetting connections, in the
middle of a session. Every public call must raise the course error that says so (DockerNotRunning,
ClusterUnreachable), never a client library's exception, and no thread may print a traceback.

The failures are real: a relay sits between the helpers and the real engine or API server, and
the test stops it (as if the server went away) or makes it reset every connection."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import helpers
from helpers import _identity, docker, k8s
from helpers._docker import engine
from helpers._errors import ClusterUnreachable, DockerNotRunning
from helpers._k8s import client
from tests.relay import Relay

CHAPTER = "91-failures"


# --- the API server -------------------------------------------------------------------------


def _deployment(name: str) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "web", "image": "course/web:v1"}],
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template},
    }


@pytest.fixture(scope="module")
def ns(cluster: None) -> Iterator[str]:
    """A namespace with a ready pod and a deployment with two revisions, made over the real
    connection before anything fails."""
    import os

    os.environ["COURSE_LEARNER"] = "pytest"
    _identity.chapter(CHAPTER)
    name = k8s.namespace()
    k8s.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "web", "image": "course/web:v1"}]},
        },
        name,
    )
    k8s.apply(_deployment("app"), name)
    k8s.wait("pod/web", "Ready", name)
    k8s.set_image("app", "web", "course/web:v2", name)
    yield name
    k8s.delete_namespace(name, wait_until_gone=False)


@pytest.fixture
def api_relay(ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Relay]:
    """The helpers talk to the real API server through a relay; discovery is already done."""
    config = yaml.safe_load(Path(client.kubeconfig_path() or "").read_text())
    server = config["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    relay = Relay.tcp(host, int(port))
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{relay.port}"
    path = tmp_path / "relayed.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    client.reconnect()
    _identity.chapter(CHAPTER)
    assert k8s.get("pod/web", ns).name == "web"  # works through the relay; kinds discovered
    yield relay
    relay.stop()
    monkeypatch.undo()
    client.reconnect()


CLUSTER_CALLS: dict[str, Callable[[str], object]] = {
    "request": lambda ns: k8s.request("GET", "/version"),
    "namespace": lambda ns: k8s.namespace(),
    "delete_namespace": lambda ns: k8s.delete_namespace("pytest-no-such-namespace"),
    "apply": lambda ns: k8s.apply(_deployment("other"), ns),
    "apply dry run": lambda ns: k8s.apply(_deployment("other"), ns, dry_run=True),
    "get": lambda ns: k8s.get("pod/web", ns),
    "Object.refresh": lambda ns: k8s.Object(
        {"kind": "Pod", "metadata": {"name": "web", "namespace": ns}}
    ).refresh(),
    "exists": lambda ns: k8s.exists("pod/web", ns),
    "list_objects": lambda ns: k8s.list_objects("pods", ns),
    "delete": lambda ns: k8s.delete("pod/not-there", ns),
    "pods": lambda ns: k8s.pods(ns),
    "events": lambda ns: k8s.events(ns, about="pod/web"),
    "logs": lambda ns: k8s.logs("web", ns),
    "exec": lambda ns: k8s.exec("web", "hostname", ns),
    "wait": lambda ns: k8s.wait("pod/web", "Ready", ns, timeout=5),
    "scale": lambda ns: k8s.scale("app", 2, ns),
    "set_image": lambda ns: k8s.set_image("app", "web", "course/web:v1", ns),
    "rollout_history": lambda ns: k8s.rollout_history("app", ns),
    "rollback": lambda ns: k8s.rollback("app", ns),
    "nodes": lambda ns: k8s.nodes(),
    "usage": lambda ns: k8s.usage(ns),
    "monitor": lambda ns: k8s.monitor(ns),
    "architecture": lambda ns: k8s.architecture(),
    "fetch": lambda ns: helpers.fetch("pod/web", ns, timeout=3),
    "port_forward": lambda ns: k8s.port_forward("pod/web", 80, ns).__enter__(),
}


@pytest.mark.cluster
@pytest.mark.parametrize("failure", ["stopped", "resetting"])
@pytest.mark.parametrize("call", CLUSTER_CALLS, ids=list(CLUSTER_CALLS))
def test_every_cluster_call_says_the_api_server_does_not_answer(
    api_relay: Relay, ns: str, call: str, failure: str
) -> None:
    api_relay.stop() if failure == "stopped" else api_relay.reset()
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable) as caught:
        CLUSTER_CALLS[call](ns)
    assert time.monotonic() - started < 15, "a dead API server is reported at once, not waited out"
    assert "does not answer" in str(caught.value) and "make cluster" in str(caught.value)


@pytest.mark.cluster
def test_a_wait_whose_server_stops_mid_watch_says_so_at_once(api_relay: Relay, ns: str) -> None:
    outcome: dict[str, BaseException] = {}

    def waiting() -> None:
        try:  # nothing will ever be called "never": the wait watches until the relay stops
            k8s.wait("pod/web", "never", ns, timeout=60)
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=waiting)
    worker.start()
    time.sleep(1.5)  # the wait is now inside its watch
    started = time.monotonic()
    api_relay.stop()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), ClusterUnreachable), outcome
    assert time.monotonic() - started < 10


@pytest.mark.cluster
def test_the_api_proxy_answers_502_when_the_server_is_gone(api_relay: Relay) -> None:
    with k8s.api_proxy() as base:
        api_relay.stop()
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(base + "/api/v1/namespaces", timeout=15)
    assert caught.value.code == 502
    assert "does not answer" in caught.value.read().decode() or "does not answer" in str(
        caught.value
    )


@pytest.mark.cluster
def test_a_port_forward_whose_server_dies_prints_no_traceback(
    api_relay: Relay, ns: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with k8s.port_forward("pod/web", 80, ns) as local_port:
        assert "v1" in helpers.fetch(f"http://127.0.0.1:{local_port}/version")
        api_relay.stop()
        with pytest.raises(helpers.errors.CourseError):
            helpers.fetch(f"http://127.0.0.1:{local_port}/version", timeout=3)
    time.sleep(0.5)  # let the forwarding threads end
    printed = capfd.readouterr()
    assert "Traceback" not in printed.err + printed.out


@pytest.mark.cluster
def test_the_doctor_reports_a_dead_cluster_instead_of_raising(api_relay: Relay) -> None:
    api_relay.stop()
    report = helpers.doctor()
    failed = {f.check: f.detail for f in report.failed()}
    assert not report.ok and any(check.startswith("Cluster") for check in failed), failed


# --- the Docker engine ----------------------------------------------------------------------


@pytest.fixture
def engine_relay(
    docker_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Relay]:
    """A container 'web' runs; then the helpers talk to the real engine through a relay."""
    _identity.chapter(CHAPTER)
    docker.cleanup()
    docker.run("course/web:v1", "web")
    real = engine.client().api.base_url  # http+docker://localhost: the default socket
    assert "localhost" in real or "docker" in real
    socket_path = str(tmp_path / "docker.sock")
    relay = Relay.unix(socket_path, "/var/run/docker.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    engine.reconnect()
    engine.client()  # connected through the relay
    yield relay
    relay.stop()
    monkeypatch.undo()
    engine.reconnect()
    docker.cleanup()


ENGINE_CALLS: dict[str, Callable[[], object]] = {
    "run": lambda: docker.run("course/web:v1", "other"),
    "ps": lambda: docker.ps(all=True),
    "inspect": lambda: docker.inspect("web"),
    "exec": lambda: docker.exec("web", "hostname"),
    "logs": lambda: docker.logs("web"),
    "stop": lambda: docker.stop("web"),
    "rm": lambda: docker.rm("web", force=True),
    "cleanup": lambda: docker.cleanup(),
    "build": lambda: docker.build(".", "broken:v1", dockerfile="FROM course/web:v1\n"),
    "image": lambda: docker.image("course/web:v1"),
    "Image.based_on": lambda: _image_before_failure.based_on("busybox:1.35"),
    "images": lambda: docker.images(),
    "stats": lambda: docker.stats("web"),
    "monitor": lambda: docker.monitor("web"),
}
_image_before_failure: Any = None


@pytest.mark.docker
@pytest.mark.parametrize("failure", ["stopped", "resetting"])
@pytest.mark.parametrize("call", ENGINE_CALLS, ids=list(ENGINE_CALLS))
def test_every_docker_call_says_the_engine_does_not_answer(
    engine_relay: Relay, call: str, failure: str
) -> None:
    global _image_before_failure
    _image_before_failure = docker.image("course/web:v1")
    engine_relay.stop() if failure == "stopped" else engine_relay.reset()
    with pytest.raises(DockerNotRunning) as caught:
        ENGINE_CALLS[call]()
    assert "does not answer" in str(caught.value) or "No Docker engine" in str(caught.value)


@pytest.mark.docker
def test_the_doctor_reports_a_dead_engine_instead_of_raising(engine_relay: Relay) -> None:
    engine_relay.stop()
    report = helpers.doctor(cluster=False)
    failed = {f.check: f.detail for f in report.failed()}
    assert not report.ok and "Docker engine" in failed, failed
