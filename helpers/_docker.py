"""Docker, as the containers chapter uses it: each function mirrors one docker command.

Names are short in the notebook ("web") and prefixed on the engine ("alice-01-web"), so learners and
students sharing one engine never collide. Only this learner's containers are listed or touched.
"""

from __future__ import annotations

import io
import platform
import socket
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container as _SdkContainer

from ._errors import (
    BuildFailed,
    ContainerNotFound,
    DockerError,
    DockerNotRunning,
    ImageNotFound,
    NameTaken,
    PortInUse,
)
from ._identity import chapter
from ._output import ExecResult, Table

_client: docker.DockerClient | None = None

PortMap = Mapping[int, int | tuple[str, int | None] | None]


def _start_docker_hint() -> str:
    system = platform.system()
    if system == "Darwin":
        return "Start Docker Desktop (or colima start), wait for it to say it is running, retry."
    if system == "Windows" or "microsoft" in platform.release().lower():
        return "Start Docker Desktop with the WSL 2 backend enabled for this distro, then retry."
    return "Run `make docker` in the course folder (or: sudo systemctl start docker), then retry."


def client() -> docker.DockerClient:
    """The Docker client, connected once per kernel. Raises DockerNotRunning with the fix."""
    global _client
    if _client is not None:
        return _client
    try:
        candidate = docker.from_env(version="auto", timeout=30)
        candidate.ping()
    except docker.errors.DockerException as error:
        raise DockerNotRunning(
            "No Docker engine answers on this machine.",
            hint=_start_docker_hint(),
            output=str(error),
        ) from None
    _client = candidate
    return _client


def full_name(name: str) -> str:
    """The engine-side name of a container or image: ``web`` becomes ``alice-01-web``."""
    prefix = chapter().prefix
    return name if name.startswith(prefix + "-") else f"{prefix}-{name}"


def _host_binding(host: int | tuple[str, int | None] | None) -> tuple[str, int | None]:
    if isinstance(host, tuple):
        return host
    return "127.0.0.1", host


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
        return f"container {self.name} ({self.id[:12]}): {self.status}, image {self.image}, {self.ports_text}"

    __repr__ = __str__


def _snapshot(raw: _SdkContainer) -> Container:
    raw.reload()
    attrs: dict[str, Any] = raw.attrs
    config = attrs.get("Config") or {}
    ports: dict[int, tuple[str, int]] = {}
    for key, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        for binding in bindings or []:
            ports.setdefault(int(key.split("/")[0]), (binding["HostIp"], int(binding["HostPort"])))
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    name = attrs["Name"].lstrip("/")
    prefix = chapter().prefix + "-"
    state = attrs.get("State") or {}
    return Container(
        name=name,
        short_name=name.removeprefix(prefix),
        id=attrs["Id"],
        image=config.get("Image", ""),
        status=state.get("Status", "unknown"),
        ports=ports,
        labels=dict(config.get("Labels") or {}),
        env=env,
        command=list(config.get("Cmd") or []),
        exit_code=state.get("ExitCode") if state.get("Status") == "exited" else None,
    )


def _get(name: str) -> _SdkContainer:
    try:
        return client().containers.get(full_name(name))
    except docker.errors.NotFound:
        mine = [c.short_name for c in _mine(all=True)]
        raise ContainerNotFound(
            f"You have no container named {name!r} (on the engine: {full_name(name)}).",
            hint=f"Your containers: {', '.join(mine) or 'none'}. List them with docker.ps(all=True).",
        ) from None


def inspect(name: str) -> Container:
    """Details of one of your containers.  CLI: ``docker inspect alice-01-web``

    >>> inspect("web").status   # doctest: +SKIP
    'running'
    """
    return _snapshot(_get(name))


def _port_holder(host_port: int) -> str | None:
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
) -> Container:
    """Start a container in the background and return it.

    ``ports`` maps a container port to a host port on 127.0.0.1 (``{80: 8080}``); give
    ``(ip, port)`` to bind elsewhere. Nothing is ever pulled: images are built locally.

    CLI: ``docker run -d --name alice-01-web -p 127.0.0.1:8080:80 -e K=V -l K=V IMAGE [COMMAND]``

    >>> run("course/web:v1", "web", ports={80: 8080})   # doctest: +SKIP
    container alice-01-web (3f2a...): running, image course/web:v1, 127.0.0.1:8080->80
    """
    engine = client()
    full = full_name(name)
    port_bindings = {f"{cp}/tcp": _host_binding(h) for cp, h in (ports or {}).items()}
    try:
        engine.images.get(image)
    except docker.errors.ImageNotFound:
        raise ImageNotFound(
            f"The image {image!r} is not on this machine, and the course never pulls images.",
            hint="Build the course images with `make images`; see yours with docker.images().",
        ) from None
    try:
        created = engine.containers.create(
            image,
            command=list(command) if command else None,
            name=full,
            detach=True,
            environment=dict(env or {}),
            labels={**(labels or {}), **chapter().labels},
            ports=port_bindings,
        )
    except docker.errors.APIError as error:
        if error.status_code == 409:
            raise NameTaken(
                f"You already have a container named {name!r}.",
                hint=f'Remove it first: docker.rm("{name}", force=True)   '
                f"(CLI: docker rm -f {full}), or choose another name.",
            ) from None
        raise DockerError(f"Docker could not create {full}: {error.explanation}") from None
    try:
        created.start()
    except docker.errors.APIError as error:
        created.remove(force=True)  # leave nothing half-made behind
        text = str(error.explanation or error)
        if "port is already allocated" in text or "address already in use" in text:
            wanted = [h for h in (_host_binding(v)[1] for v in (ports or {}).values()) if h]
            holders = [f"{p} (held by {_port_holder(p) or 'another program'})" for p in wanted]
            raise PortInUse(
                f"Host port {', '.join(holders)} is already in use, so {name!r} was not started.",
                hint="Pick a free port, e.g. ports={80: helpers.free_port()}, or stop the "
                "container that holds it.",
            ) from None
        raise DockerError(f"Docker could not start {full}: {text}") from None
    return _snapshot(created)


def _mine(*, all: bool = False) -> list[Container]:
    learner_label = f"course.learner={chapter().learner}"
    chapter_label = f"course.chapter={chapter().name}"
    found = client().containers.list(all=all, filters={"label": [learner_label, chapter_label]})
    return [_snapshot(c) for c in found]


def ps(*, all: bool = False) -> Table:
    """Your containers in this chapter, as a table.

    CLI: ``docker ps [-a] --filter label=course.learner=alice --filter label=course.chapter=...``
    """
    rows = [[c.short_name, c.id[:12], c.image, c.status, c.ports_text] for c in _mine(all=all)]
    return Table(["name", "id", "image", "status", "ports"], rows)


def exec(name: str, command: str | Sequence[str]) -> ExecResult:
    """Run a command inside a running container. A string runs through ``sh -c``.

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
    code, (out, err) = container.exec_run(argv, demux=True)
    return ExecResult(argv, int(code), (out or b"").decode(), (err or b"").decode())


def logs(name: str, *, tail: int | None = None) -> str:
    """What the container wrote to stdout and stderr.  CLI: ``docker logs [--tail N] alice-01-web``"""
    raw = _get(name).logs(tail=tail if tail is not None else "all")
    return bytes(raw).decode(errors="replace")


def stop(name: str, *, timeout: int = 3) -> Container:
    """Stop a container (SIGTERM, then SIGKILL after ``timeout`` s).  CLI: ``docker stop alice-01-web``"""
    container = _get(name)
    container.stop(timeout=timeout)
    return _snapshot(container)


def rm(name: str, *, force: bool = False) -> None:
    """Remove a container; ``force=True`` also stops it.  CLI: ``docker rm [-f] alice-01-web``"""
    container = _get(name)
    try:
        container.remove(force=force)
    except docker.errors.APIError as error:
        if error.status_code == 409:
            raise DockerError(
                f"{name!r} is still running, so it was not removed.",
                hint=f'Stop it first with docker.stop("{name}"), or use docker.rm("{name}", force=True).',
            ) from None
        raise DockerError(f"Docker could not remove {name!r}: {error.explanation}") from None


def cleanup(*, everyone: bool = False) -> list[str]:
    """Remove your containers and images of this chapter (``everyone=True``: every learner's).

    CLI: ``docker rm -f $(docker ps -aq --filter label=course.learner=alice ...)``
         ``docker rmi $(docker images -q --filter label=course.learner=alice ...)``
    """
    filters = {
        "label": ["course.learner"]
        if everyone
        else [f"course.learner={chapter().learner}", f"course.chapter={chapter().name}"]
    }
    removed = []
    for container in client().containers.list(all=True, filters=filters):
        container.remove(force=True)
        removed.append(str(container.name))
    for built in client().images.list(filters=filters):
        for tag in built.tags:
            client().images.remove(tag, force=True)
            removed.append(tag)
    return removed


def _context_tar(path: Path, dockerfile: str | None) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if path.is_dir():
            tar.add(path, arcname=".")
        if dockerfile is not None:
            data = dockerfile.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def build_image(
    path: str | Path,
    tag: str,
    *,
    dockerfile: str | None = None,
    buildargs: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Build ``path`` (a folder with a Dockerfile, or ``dockerfile`` text) as exactly ``tag``."""
    context = _context_tar(Path(path), dockerfile)
    output: list[str] = []
    try:
        for chunk in client().api.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            buildargs=dict(buildargs or {}),
            labels=dict(labels or {}),
        ):
            if "stream" in chunk:
                output.append(chunk["stream"])
            if "error" in chunk:
                raise BuildFailed(
                    f"Building {tag} failed: {chunk['error'].strip()}",
                    hint="Read the step that failed below; fix that line of the Dockerfile.",
                    output="".join(output),
                )
    except docker.errors.APIError as error:
        raise BuildFailed(f"Building {tag} failed: {error.explanation}") from None
    return tag


def build(path: str | Path, name: str, *, dockerfile: str | None = None) -> str:
    """Build an image from a folder (or from ``dockerfile`` text) and tag it with your prefix.

    CLI: ``docker build -t alice-01-hello:v1 PATH``

    >>> build(".", "hello:v1", dockerfile="FROM course/web:v1\\nENV MESSAGE=hi")  # doctest: +SKIP
    'alice-01-hello:v1'
    """
    if ":" not in name or name.endswith(":latest"):
        raise DockerError(
            f"Give {name!r} an explicit version tag, such as {name.split(':')[0]}:v1.",
            hint="The course never uses :latest, because Kubernetes then always tries to pull.",
        )
    return build_image(path, full_name(name), dockerfile=dockerfile, labels=chapter().labels)


@dataclass(frozen=True)
class Image:
    """A snapshot of one image, as ``docker image inspect`` sees it."""

    tag: str
    id: str
    size_mb: float
    labels: dict[str, str]
    env: dict[str, str]
    exposed_ports: list[int]
    command: list[str]
    entrypoint: list[str]
    layers: list[str]

    def __str__(self) -> str:
        return (
            f"image {self.tag} ({self.id.removeprefix('sha256:')[:12]}), {self.size_mb} MB, "
            f"{len(self.layers)} layers\n  CMD {self.command}  EXPOSE {self.exposed_ports}\n"
            f"  ENV {self.env}\n  LABELS {self.labels}"
        )

    __repr__ = __str__

    def based_on(self, other: str) -> bool:
        """Whether this image was built on top of ``other`` (``FROM other``)."""
        target = image(other).id
        current: str | None = self.id
        while current:  # the classic builder records each step's parent image
            if current == target:
                return True
            current = client().api.inspect_image(current).get("Parent") or None
        if client().api.inspect_image(self.id).get("Parent"):
            return False
        base = image(other).layers  # BuildKit keeps no parents: compare the layers instead
        return self.layers[: len(base)] == base


def image(tag: str) -> Image:
    """Details of an image.  CLI: ``docker image inspect TAG``"""
    for candidate in (full_name(tag), tag):
        try:
            raw = client().images.get(candidate)
        except docker.errors.ImageNotFound:
            continue
        config = raw.attrs.get("Config") or {}
        return Image(
            tag=candidate,
            id=str(raw.id),
            size_mb=round(raw.attrs.get("Size", 0) / 1e6, 1),
            labels=dict(config.get("Labels") or {}),
            env=dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e),
            exposed_ports=sorted(int(p.split("/")[0]) for p in config.get("ExposedPorts") or {}),
            command=list(config.get("Cmd") or []),
            entrypoint=list(config.get("Entrypoint") or []),
            layers=list((raw.attrs.get("RootFS") or {}).get("Layers") or []),
        )
    raise ImageNotFound(
        f"There is no image {tag!r} on this machine.",
        hint="See what there is with docker.images().",
    )


def images() -> Table:
    """The course's images and yours.  CLI: ``docker images``"""
    prefix = chapter().learner + "-"
    rows = []
    for img in client().images.list():
        for tag in img.tags:
            if tag.startswith(("course/", prefix, "busybox:")):
                rows.append(
                    [
                        tag,
                        img.short_id.removeprefix("sha256:"),
                        f"{img.attrs.get('Size', 0) / 1e6:.1f} MB",
                    ]
                )
    return Table(["image", "id", "size"], sorted(rows))


@dataclass(frozen=True)
class Usage:
    """CPU and memory of one container or pod at one moment."""

    name: str
    cpu_percent: float
    memory_mib: float


def _counters(name: str) -> tuple[float, float, int, float]:
    raw = _get(name).stats(stream=False, one_shot=True)
    cpu = raw.get("cpu_stats") or {}
    memory = raw.get("memory_stats") or {}
    cache = (memory.get("stats") or {}).get("cache", 0)
    return (
        float((cpu.get("cpu_usage") or {}).get("total_usage", 0)),
        float(cpu.get("system_cpu_usage", 0)),
        int(cpu.get("online_cpus") or 1),
        max(0.0, float(memory.get("usage", 0)) - cache) / 2**20,
    )


class StatsSampler:
    """CPU% from the difference between two reads of the container's counters, like docker stats."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._last: dict[str, tuple[float, float]] = {}

    def sample(self) -> list[Usage]:
        usages = []
        for name in self.names:
            try:
                total, system, cpus, memory = _counters(name)
            except (ContainerNotFound, docker.errors.APIError):
                usages.append(Usage(name, 0.0, 0.0))
                continue
            before = self._last.get(name)
            self._last[name] = (total, system)
            cpu = 0.0
            if before and system > before[1]:
                cpu = (total - before[0]) / (system - before[1]) * cpus * 100
            usages.append(Usage(name, round(max(cpu, 0.0), 1), round(memory, 1)))
        return usages


def stats(name: str) -> Usage:
    """CPU (percent of one core) and memory of a container, measured over half a second.

    CLI: ``docker stats --no-stream alice-01-web``
    """
    sampler = StatsSampler([name])
    sampler.sample()
    time.sleep(0.5)
    return sampler.sample()[0]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
