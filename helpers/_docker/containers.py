"""Containers: run, ps, inspect, exec, logs, stop, rm, cleanup. Each mirrors one docker command.

Names are short in the notebook (``web``) and prefixed on the engine (``alice-01-web``). Only
this learner's containers are listed or touched: those with this learner's course labels, and
those named with this learner's prefix (so ``docker run --name alice-01-web ...`` typed in a
terminal counts too).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker.errors
from docker.models.containers import Container as _SdkContainer

from .._errors import (
    ContainerNotFound,
    DockerError,
    ImageNotFound,
    NameTaken,
    PortInUse,
    WaitTimeout,
)
from .._identity import chapter
from .._output import Table
from .._types import ExecResult, PortMap
from .engine import (
    CONNECTION_ERRORS,
    client,
    engine_errors,
    find_container,
    find_image,
    full_name,
)


@dataclass(frozen=True)
class Container:
    """A snapshot of one container, as ``docker inspect`` sees it."""

    name: str
    short_name: str
    id: str
    image: str
    status: str
    ports: dict[int, tuple[str, int]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    exit_code: int | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def ports_text(self) -> str:
        return ", ".join(f"{ip}:{hp}->{cp}" for cp, (ip, hp) in self.ports.items()) or "no ports"

    def __str__(self) -> str:
        code = f" (exit code {self.exit_code})" if self.exit_code is not None else ""
        return (
            f"container {self.name} ({self.id[:12]}): {self.status}{code}, image {self.image}, "
            f"{self.ports_text}"
        )

    __repr__ = __str__


def _snapshot(raw: _SdkContainer) -> Container:
    with engine_errors(f"docker inspect {raw.name}"):
        raw.reload()
    attrs: dict[str, Any] = raw.attrs
    config = attrs.get("Config") or {}
    ports: dict[int, tuple[str, int]] = {}
    for key, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        for binding in bindings or []:
            ports.setdefault(int(key.split("/")[0]), (binding["HostIp"], int(binding["HostPort"])))
    state = attrs.get("State") or {}
    name = attrs["Name"].lstrip("/")
    return Container(
        name=name,
        short_name=name.removeprefix(chapter().prefix + "-"),
        id=attrs["Id"],
        image=config.get("Image", ""),
        status=state.get("Status", "unknown"),
        ports=ports,
        labels=dict(config.get("Labels") or {}),
        env=dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item),
        command=list(config.get("Cmd") or []),
        exit_code=state.get("ExitCode") if state.get("Status") == "exited" else None,
    )


def _mine(*, all: bool = False) -> list[_SdkContainer]:
    """This learner's containers of this chapter: by label, or by name prefix (typed in a shell)."""
    current = chapter()
    labelled = {"label": [f"course.learner={current.learner}", f"course.chapter={current.name}"]}
    with engine_errors("docker ps"):
        found = {c.id: c for c in client().containers.list(all=all, filters=labelled)}
        for c in client().containers.list(all=all, filters={"name": f"^/?{current.prefix}-"}):
            if str(c.name).startswith(current.prefix + "-"):
                found.setdefault(c.id, c)
    return sorted(found.values(), key=lambda c: str(c.name))


def _get(name: str) -> _SdkContainer:
    found = find_container(full_name(name))
    if found is not None:
        return found
    mine = [str(c.name).removeprefix(chapter().prefix + "-") for c in _mine(all=True)]
    raise ContainerNotFound(
        f"You have no container named {name!r} (on the engine: {full_name(name)}).",
        hint=f"Your containers: {', '.join(mine) or 'none'}. List them with docker.ps(all=True).",
    )


def inspect(name: str) -> Container:
    """Details of one of your containers.  CLI: ``docker inspect alice-01-web``

    >>> inspect("web").status   # doctest: +SKIP
    'running'
    """
    return _snapshot(_get(name))


def _host_binding(host: int | tuple[str, int | None] | None) -> tuple[str, int | None]:
    return host if isinstance(host, tuple) else ("127.0.0.1", host)


def _port_holder(host_port: int) -> str | None:
    with engine_errors("docker ps"):
        for other in client().containers.list():
            for bindings in (other.attrs.get("NetworkSettings", {}).get("Ports") or {}).values():
                if any(int(b["HostPort"]) == host_port for b in bindings or []):
                    return str(other.name)
    return None


def run(
    image: str,
    name: str,
    *,
    ports: PortMap | None = None,
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    cpus: float | None = None,
    memory: str | None = None,
) -> Container:
    """Start a container in the background and return it.

    ``ports`` maps a container port to a host port on 127.0.0.1 (``{80: 8080}``); give
    ``(ip, port)`` to bind elsewhere. ``env`` and ``labels`` are dicts. ``cpus=0.5`` caps the
    container at half a core; ``memory="64m"`` caps its memory. Nothing is ever pulled: images are
    built locally.

    CLI: ``docker run -d --name alice-01-web -p 127.0.0.1:8080:80 -e K=V -l K=V --cpus 0.5
    --memory 64m IMAGE [COMMAND]``

    >>> run("course/web:v1", "web", ports={80: 8080})   # doctest: +SKIP
    container alice-01-web (3f2a...): running, image course/web:v1, 127.0.0.1:8080->80
    """
    engine = client()
    full = full_name(name)
    if find_image(image) is None:
        raise ImageNotFound(
            f"The image {image!r} is not on this machine, and the course never pulls images.",
            hint="Build the course images with `make images`; see yours with docker.images().",
        )
    limits: dict[str, Any] = {}
    if cpus is not None:
        limits["nano_cpus"] = int(cpus * 1e9)
    if memory is not None:
        limits["mem_limit"] = memory
    with engine_errors(f"docker create {full}"):
        try:
            created = engine.containers.create(
                image,
                command=list(command) if command else None,
                name=full,
                detach=True,
                environment=dict(env or {}),
                labels={**(labels or {}), **chapter().labels},
                ports={f"{cp}/tcp": _host_binding(h) for cp, h in (ports or {}).items()},
                **limits,
            )
        except docker.errors.APIError as error:
            if error.status_code == 409:
                raise NameTaken(
                    f"You already have a container named {name!r}.",
                    hint=f'Remove it first: docker.rm("{name}", force=True)   '
                    f"(CLI: docker rm -f {full}), or choose another name.",
                ) from None
            raise
    try:
        with engine_errors(f"docker start {full}"):
            created.start()
    except DockerError as error:
        with engine_errors(f"docker rm -f {full}"):
            created.remove(force=True)  # leave nothing half-made behind
        if "port is already allocated" in str(error) or "address already in use" in str(error):
            wanted = [h for h in (_host_binding(v)[1] for v in (ports or {}).values()) if h]
            holders = [f"{p} (held by {_port_holder(p) or 'another program'})" for p in wanted]
            raise PortInUse(
                f"Host port {', '.join(holders)} is already in use, so {name!r} was not started.",
                hint="Pick a free port, e.g. ports={80: helpers.free_port()}, or stop the "
                "container that holds it.",
            ) from None
        raise
    return _snapshot(created)


def ps(*, all: bool = False) -> Table:
    """Your containers in this chapter, as a table.

    CLI: ``docker ps --filter name=^alice-01-`` (``-a``: stopped ones too)
    """
    rows = []
    for container in _mine(all=all):
        c = _snapshot(container)
        rows.append([c.short_name, c.id[:12], c.image, c.status, c.ports_text])
    return Table(["name", "id", "image", "status", "ports"], rows)


def exec(name: str, command: str | Sequence[str], *, timeout: float = 30) -> ExecResult:
    """Run a command inside a running container and wait for it (at most ``timeout`` s).
    A string runs through ``sh -c``.

    CLI: ``docker exec alice-01-web sh -c 'ps'``

    >>> print(exec("web", "hostname").stdout)   # doctest: +SKIP
    3f2a9c1d0b7e
    """
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    container = _get(name)
    if container.status != "running":
        raise DockerError(
            f"{name!r} is {container.status}, and exec needs a running container.",
            hint=f"Look at why it stopped: docker.logs({name!r})",
        )
    what = f"docker exec {container.name}"
    api = client().api
    with engine_errors(what):
        exec_id = api.exec_create(container.id, argv, stdout=True, stderr=True)["Id"]
    outcome: dict[str, Any] = {}

    def run_it() -> None:  # in a thread, so the wait can end at the timeout
        try:
            outcome["output"] = api.exec_start(exec_id, demux=True)
        except (docker.errors.DockerException, *CONNECTION_ERRORS) as error:
            outcome["error"] = error

    worker = threading.Thread(target=run_it, name="course-docker-exec", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise WaitTimeout(
            f"{what}: {argv} did not finish within {timeout:g} s (it may still run in the container).",
            hint="Pass a larger timeout=, or make the command end on its own (timeout N CMD).",
        )
    if "error" in outcome:
        with engine_errors(what):
            raise outcome["error"]
    out, err = outcome["output"]
    with engine_errors(what):
        code = api.exec_inspect(exec_id)["ExitCode"]
    return ExecResult(
        argv,
        int(code if code is not None else -1),
        (out or b"").decode(errors="replace"),
        (err or b"").decode(errors="replace"),
    )


def logs(name: str, *, tail: int | None = None) -> str:
    """What the container wrote to stdout and stderr, up to now.

    The engine copies a container's output into its log a moment after it is written, so a
    line written just before this call (by a request that has already been answered) could be
    missing: this reads until two reads agree (about 0.1 s, at most 2 s).

    CLI: ``docker logs --tail N alice-01-web``
    """
    container = _get(name)
    read = b""
    deadline = time.monotonic() + 2
    with engine_errors(f"docker logs {container.name}"):
        while True:
            again = bytes(container.logs(tail=tail if tail is not None else "all"))
            if again == read or time.monotonic() > deadline:
                break
            read = again
            time.sleep(0.1)
    return again.decode(errors="replace")


def stop(name: str, *, timeout: int = 3) -> Container:
    """Stop a container: SIGTERM, then SIGKILL after ``timeout`` seconds.

    CLI: ``docker stop -t 3 alice-01-web``
    """
    container = _get(name)
    with engine_errors(f"docker stop -t {timeout} {container.name}"):
        container.stop(timeout=timeout)
    return _snapshot(container)


def rm(name: str, *, force: bool = False) -> None:
    """Remove a container. ``force=True`` removes a running one too, killing it (SIGKILL) first,
    without the polite SIGTERM that stop sends.

    CLI: ``docker rm alice-01-web`` (``force=True``: ``docker rm -f alice-01-web``)
    """
    container = _get(name)
    try:
        with engine_errors(f"docker rm {container.name}"):
            container.remove(force=force)
    except DockerError as error:
        if "running" in str(error).lower() or "stop the container" in str(error).lower():
            raise DockerError(
                f"{name!r} is still running, so it was not removed.",
                hint=f'Stop it first with docker.stop("{name}"), or use docker.rm("{name}", force=True).',
            ) from None
        raise


def cleanup(*, all_chapters: bool = False, everyone: bool = False) -> list[str]:
    """Remove your containers and images of this chapter; returns what was removed.
    ``all_chapters=True``: of every chapter. ``everyone=True``: every learner's (instructors).

    CLI: ``docker rm -f $(docker ps -aq --filter label=course.learner=alice --filter
    label=course.chapter=01-containers)``, then the same with ``docker rmi`` and ``docker images -q``
    """
    current = chapter()
    if everyone:
        labels = ["course.learner"]
    elif all_chapters:
        labels = [f"course.learner={current.learner}"]
    else:
        labels = [f"course.learner={current.learner}", f"course.chapter={current.name}"]
    removed = []
    with engine_errors("docker rm -f (cleanup)"):
        containers = {
            c.id: c for c in client().containers.list(all=True, filters={"label": labels})
        }
        if not everyone and not all_chapters:
            containers.update({c.id: c for c in _mine(all=True)})
        for container in containers.values():
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                continue  # already gone (removed by another cell or its own --rm)
            removed.append(str(container.name))
    with engine_errors("docker rmi (cleanup)"):
        for built in client().images.list(filters={"label": labels}):
            for tag in built.tags:
                try:
                    client().images.remove(tag, force=True)
                except docker.errors.NotFound:
                    continue
                removed.append(tag)
    return removed


def exec_commands(name: str) -> list[str]:
    """The commands ``docker exec`` ran in a container so far, oldest first, from the engine's
    event log (it keeps the recent ones).

    CLI: ``docker events --since 1h --until 0s --filter container=alice-01-web --filter event=exec_start``
    """
    import datetime
    import time

    container = _get(name)
    created = container.attrs.get("Created", "")[:19]
    since = int(datetime.datetime.fromisoformat(created).replace(tzinfo=datetime.UTC).timestamp())
    with engine_errors(f"docker events for {container.name}"):
        events = client().api.events(
            since=since - 1,
            until=int(time.time()) + 1,
            filters={"container": container.id, "event": "exec_start"},
            decode=True,
        )
        actions = [str(e.get("Action") or e.get("status") or "") for e in events]
    return [a.removeprefix("exec_start:").strip() for a in actions]
