"""The engine guard in front of the real Docker engine: a student's own containers work as the
course uses them; another student's, and anything that reaches the host, are refused."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import APIError

from helpers._grading.engine_guard import EngineGuard
from helpers._grading.sandbox import docker_socket

pytestmark = [pytest.mark.docker]


@pytest.fixture
def guarded(tmp_path: Path, docker_engine: None) -> Iterator[dict[str, Any]]:
    stamp = int(time.time()) % 100000
    me, other = f"gd{stamp}-me", f"gd{stamp}-other"
    real = docker.from_env()
    victim = real.containers.run(
        "course/web:v1", name=f"{other}-01-web", labels={"course.learner": other}, detach=True
    )
    guard = EngineGuard(me, Path(f"/tmp/guard-{stamp}.sock"), str(docker_socket())).start()
    try:
        yield {
            "me": me,
            "victim": victim,
            "client": docker.DockerClient(base_url=f"unix://{guard.socket_path}"),
        }
    finally:
        guard.stop()
        for container in real.containers.list(all=True, filters={"name": f"gd{stamp}-"}):
            container.remove(force=True)
        for image in real.images.list(filters={"label": f"course.learner={me}"}):
            real.images.remove(image.id, force=True)


def refused(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(APIError) as caught:
        call(*args, **kwargs)
    assert caught.value.status_code == 403, caught.value
    return str(caught.value.explanation)


def test_a_students_own_containers_work_as_the_course_uses_them(guarded: dict[str, Any]) -> None:
    client, me = guarded["client"], guarded["me"]
    mine = client.containers.run(
        "course/web:v1",
        name=f"{me}-01-web",
        labels={"course.learner": me},
        ports={"80/tcp": ("127.0.0.1", None)},
        detach=True,
    )
    assert mine.exec_run("hostname").exit_code == 0
    assert b"starting" in mine.logs()
    assert [c.name for c in client.containers.list(all=True)] == [f"{me}-01-web"]
    image, _ = client.images.build(
        fileobj=io.BytesIO(b"FROM course/web:v1\nENV X=1\n"),
        tag=f"{me}-01-img:v1",
        labels={"course.learner": me},
    )
    assert client.images.get("course/web:v1").id, "the course's images can be read"
    mine.stop(timeout=1)
    mine.remove()
    client.images.remove(image.id)


def test_another_students_containers_and_the_host_are_refused(guarded: dict[str, Any]) -> None:
    client, me, victim = guarded["client"], guarded["me"], guarded["victim"]
    run = client.containers.run
    labels = {"course.learner": me}
    squat = victim.name.replace("-01-web", "-01-next")
    assert "names start with" in refused(run, "course/web:v1", name=squat, labels=labels)
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
