"""The engine guard in front of the real Docker engine: a student's own containers work as the
course uses them (docker-py, helpers.docker, the docker CLI's raw calls), capped; another
student's, and anything that reaches the host, are refused, and the engine's state shows that
nothing happened."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import APIError

from helpers._grading.engine_guard import EngineGuard, upstream_from_environment

pytestmark = [pytest.mark.docker]

LABEL = "course.learner"


@pytest.fixture
def guarded(docker_engine: None) -> Iterator[dict[str, Any]]:
    stamp = f"{time.time_ns() % 10**8:08d}"
    me, other = f"gd{stamp}-me", f"gd{stamp}-other"
    real = docker.from_env()
    victim = real.containers.run(
        "course/web:v1", name=f"{other}-01-web", labels={LABEL: other}, detach=True
    )
    ports: list[set[int]] = []
    path = Path(f"/tmp/guard-{stamp}.sock")
    guard = EngineGuard(
        me, path, str(upstream_from_environment(os.environ)), on_ports=ports.append
    ).start()
    try:
        yield {
            "me": me,
            "victim": victim,
            "real": real,
            "ports": ports,
            "guard": guard,
            "client": docker.DockerClient(base_url=f"unix://{path}", version="auto"),
        }
    finally:
        guard.stop()
        for learner in (me, other):  # build steps leave containers with the label, not the name
            for container in real.containers.list(
                all=True, filters={"label": f"{LABEL}={learner}"}
            ):
                container.remove(force=True)
            for image in real.images.list(filters={"label": f"{LABEL}={learner}"}):
                real.images.remove(image.id, force=True)


def refused(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(APIError) as caught:
        call(*args, **kwargs)
    assert caught.value.status_code == 403, caught.value
    return str(caught.value.explanation)


def raw_http(guard: EngineGuard, request: bytes) -> bytes:
    """Bytes straight to the guard's socket, as a hostile client writes them; its answer."""
    with socket.socket(socket.AF_UNIX) as end:
        end.connect(str(guard.socket_path))
        end.settimeout(10)
        end.sendall(request)
        end.shutdown(socket.SHUT_WR)
        answer = b""
        while data := end.recv(65536):
            answer += data
        return answer


def post(path: str, body: Any) -> bytes:
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def no_container_reaches_the_host(real: docker.DockerClient, me: str) -> None:
    for container in real.containers.list(all=True, filters={"label": f"{LABEL}={me}"}):
        config = container.attrs["HostConfig"]
        assert not config.get("Privileged"), container.name
        assert not config.get("Binds") and not config.get("Mounts"), container.name


def test_a_students_own_containers_work_as_the_course_uses_them(guarded: dict[str, Any]) -> None:
    client, me, real = guarded["client"], guarded["me"], guarded["real"]
    mine = client.containers.run(
        "course/web:v1",
        name=f"{me}-01-web",
        labels={LABEL: me},
        environment={"MESSAGE": "hi"},
        ports={"80/tcp": ("127.0.0.1", None)},
        nano_cpus=500_000_000,
        mem_limit="64m",
        detach=True,
    )
    assert mine.exec_run("hostname").exit_code == 0
    assert b"starting" in mine.logs()
    assert [c.name for c in client.containers.list(all=True)] == [f"{me}-01-web"]
    config = real.api.inspect_container(mine.id)
    host = config["HostConfig"]
    assert (host["Memory"], host["PidsLimit"], host["NanoCpus"]) == (64 << 20, 256, 500_000_000)
    assert "MESSAGE=hi" in config["Config"]["Env"]
    published = int(config["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    assert guarded["ports"] == [{published}], "on_ports got the port the engine published"
    image, _ = client.images.build(
        fileobj=io.BytesIO(b"FROM course/web:v1\nRUN echo built\n"),
        tag=f"{me}-01-img:v1",
        labels={LABEL: me},
        rm=True,
    )
    assert real.images.get(f"{me}-01-img:v1").labels[LABEL] == me
    assert client.images.get("course/web:v1").id, "the course's images can be read"
    events = client.api.events(since=int(time.time()) - 60, until=int(time.time()) + 1, decode=True)
    seen = {e.get("Actor", {}).get("Attributes", {}).get(LABEL) for e in events}
    assert seen == {me}, f"events narrowed to the student's label: {seen}"
    mine.stop(timeout=1)
    mine.remove()
    client.images.remove(image.id)
    assert not real.containers.list(all=True, filters={"name": f"{me}-01-web"})


def test_a_container_with_no_limits_gets_the_caps(guarded: dict[str, Any]) -> None:
    client, me, real = guarded["client"], guarded["me"], guarded["real"]
    mine = client.containers.create("course/web:v1", name=f"{me}-01-free", labels={LABEL: me})
    host = real.api.inspect_container(mine.id)["HostConfig"]
    assert (host["Memory"], host["PidsLimit"]) == (512 << 20, 256)
    assert "at most" in refused(
        client.containers.create,
        "course/web:v1",
        name=f"{me}-01-big",
        labels={LABEL: me},
        mem_limit="2g",
    )


def test_the_helpers_docker_functions_work_through_the_guard(
    guarded: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from helpers import _identity
    from helpers import docker as course_docker
    from helpers._docker import engine
    from helpers._http import free_port

    monkeypatch.setenv("DOCKER_HOST", f"unix://{guarded['guard'].socket_path}")
    monkeypatch.setenv("COURSE_LEARNER", guarded["me"])
    _identity.chapter("01-containers")
    engine.reconnect()
    try:
        port = free_port()
        web = course_docker.run("course/web:v1", "web", ports={80: port}, cpus=0.5, memory="64m")
        assert web.running and web.ports[80] == ("127.0.0.1", port)
        assert guarded["ports"][-1] == {port}
        assert course_docker.exec("web", "echo $MESSAGE").stdout.strip()
        assert "starting" in course_docker.logs("web")
        assert "web" in str(course_docker.ps())
        tag = course_docker.build(tmp_path, "hello:v1", dockerfile="FROM course/web:v1\nENV X=1\n")
        assert tag in str(course_docker.images())
        course_docker.stop("web", timeout=1)
        course_docker.rm("web")
        removed = course_docker.cleanup()
        assert tag in removed, removed
    finally:
        engine.reconnect()


def test_upgrade_on_ping_then_a_privileged_create_is_refused(guarded: dict[str, Any]) -> None:
    # The old guard switched to a raw pipe on the client's Upgrade header: the second request
    # reached the engine unchecked.
    me, real = guarded["me"], guarded["real"]
    spec = {"Image": "course/web:v1", "Labels": {LABEL: me}}
    spec["HostConfig"] = {"Privileged": True, "Binds": ["/:/host"]}
    answer = raw_http(
        guarded["guard"],
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n"
        + post(f"/v1.41/containers/create?name={me}-01-smuggled", spec),
    )
    assert answer.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 403" in answer, answer[:400]
    assert not real.containers.list(all=True, filters={"name": f"{me}-01-smuggled"})
    no_container_reaches_the_host(real, me)


@pytest.mark.parametrize(
    "spec",
    [
        {"hostconfig": {"privileged": True}},  # keys in another case: Go matches them
        {"HostConfig": {"Privileged": False, "privileged": True}},  # a duplicate, Go takes the last
        {"Privileged": True, "Binds": ["/:/host"]},  # top level: Docker reads it without HostConfig
    ],
    ids=["lower-case keys", "duplicate key", "top-level HostConfig fields"],
)
def test_a_privileged_create_in_any_spelling_is_refused(
    guarded: dict[str, Any], spec: dict[str, Any]
) -> None:
    me, real = guarded["me"], guarded["real"]
    body = {"Image": "course/web:v1", "Labels": {LABEL: me}, **spec}
    answer = raw_http(guarded["guard"], post(f"/v1.41/containers/create?name={me}-01-p", body))
    assert answer.split(b" ")[1] in (b"400", b"403"), answer[:300]
    assert b"refused by the course's engine guard" in answer
    assert not real.containers.list(all=True, filters={"name": f"{me}-01-p"})


def test_squatting_a_name_or_the_courses_image_is_refused(guarded: dict[str, Any]) -> None:
    client, me, real, victim = guarded["client"], guarded["me"], guarded["real"], guarded["victim"]
    course_image = real.images.get("course/web:v1").id
    mine = client.containers.create("course/web:v1", name=f"{me}-01-web", labels={LABEL: me})
    squat = victim.name.replace("-01-web", "-01-next")
    assert "start with" in refused(client.api.rename, mine.id, squat)
    assert real.containers.get(mine.id).name == f"{me}-01-web"
    assert not real.containers.list(all=True, filters={"name": squat})
    image, _ = client.images.build(
        fileobj=io.BytesIO(b"FROM course/web:v1\nENV SQUAT=1\n"),
        tag=f"{me}-01-img:v1",
        labels={LABEL: me},
        rm=True,
    )
    assert "start with" in refused(client.api.tag, image.id, "course/web", "v1")
    context = io.BytesIO(b"FROM course/web:v1\nENV SQUAT=1\n")
    assert "start with" in refused(
        lambda: list(client.api.build(fileobj=context, tag="course/web:v1", labels={LABEL: me}))
    )
    assert real.images.get("course/web:v1").id == course_image, "course/web:v1 is untouched"


def test_a_privileged_exec_and_a_host_network_build_are_refused(guarded: dict[str, Any]) -> None:
    client, me, real = guarded["client"], guarded["me"], guarded["real"]
    mine = client.containers.run(
        "course/web:v1", name=f"{me}-01-web", labels={LABEL: me}, detach=True
    )
    assert "Privileged" in refused(client.api.exec_create, mine.id, "id", privileged=True)
    assert not real.api.inspect_container(mine.id)["ExecIDs"], "no exec was made"
    context = io.BytesIO(b"FROM course/web:v1\nRUN echo host\n")
    explanation = refused(
        lambda: list(
            client.api.build(
                fileobj=context, tag=f"{me}-01-net:v1", labels={LABEL: me}, network_mode="host"
            )
        )
    )
    assert "networkmode" in explanation
    assert not real.images.list(name=f"{me}-01-net")
    # Through API 1.23 a start took a HostConfig body, applied to the container.
    answer = raw_http(
        guarded["guard"], post(f"/v1.23/containers/{mine.id}/start", {"Privileged": True})
    )
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    no_container_reaches_the_host(real, me)


def test_another_students_containers_and_the_host_are_refused(guarded: dict[str, Any]) -> None:
    client, me, victim = guarded["client"], guarded["me"], guarded["victim"]
    run = client.containers.run
    labels = {LABEL: me}
    squat = victim.name.replace("-01-web", "-01-next")
    assert "start with" in refused(run, "course/web:v1", name=squat, labels=labels)
    host = {"/": {"bind": "/host", "mode": "ro"}}
    assert "host's files" in refused(
        run, "course/web:v1", name=f"{me}-01-h", labels=labels, volumes=host
    )
    for option in ({"privileged": True}, {"pid_mode": "host"}, {"network_mode": "host"}):
        refused(run, "course/web:v1", name=f"{me}-01-x", labels=labels, **option)
    refused(run, "course/web:v1", name=f"{me}-01-y")  # no course.learner label
    for call in (
        lambda: client.api.stop(victim.id),
        lambda: client.api.remove_container(victim.id, force=True),
        lambda: client.api.exec_create(victim.id, "hostname"),
        lambda: client.api.logs(victim.id),
    ):
        refused(call)
    refused(lambda: client.images.build(fileobj=io.BytesIO(b"FROM course/web:v1\n"), tag="x:v1"))
    refused(client.images.remove, "course/web:v1")
    refused(client.volumes.list)
    refused(client.api.prune_containers)
    victim.reload()
    assert victim.status == "running", "the other student's container is untouched"
