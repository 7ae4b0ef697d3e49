"""The connection to the Docker engine, names on the engine, and the one place where
docker-py's (and requests') errors become course errors (``engine_errors``)."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions
from docker.models.containers import Container
from docker.models.images import Image

from .._errors import CourseError, DockerError, DockerNotRunning
from .._identity import chapter

_client: docker.DockerClient | None = None

# What a stopped engine or a broken connection raises, from the socket up through requests.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)


def start_hint() -> str:
    """How to start Docker on this kind of machine."""
    system = platform.system()
    if system == "Darwin":
        return "Start Docker Desktop (or colima start), wait for it to say it is running, retry."
    if system == "Windows" or "microsoft" in platform.release().lower():
        return "Start Docker Desktop with the WSL 2 backend enabled for this distro, then retry."
    return "Run `make docker` in the course folder (or: sudo systemctl start docker), then retry."


@contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Turn docker-py's errors inside the block into course errors.

    This is the only place they are mapped: a refused request becomes DockerError with the
    engine's explanation; a stopped engine or a broken connection becomes DockerNotRunning.
    Callers that know more (no such container, name taken) catch those cases first.
    """
    try:
        yield
    except CourseError:
        raise
    except docker.errors.APIError as error:
        raise DockerError(f"{what}: Docker said: {error.explanation or error}") from None
    except CONNECTION_ERRORS as error:
        raise DockerNotRunning(
            f"{what}: the Docker engine does not answer.",
            hint=start_hint(),
            output=f"{type(error).__name__}: {error}"[:300],
        ) from None
    except docker.errors.DockerException as error:
        raise DockerError(f"{what}: {error}") from None


def client() -> docker.DockerClient:
    """The Docker client, connected once per kernel. Raises DockerNotRunning with the fix."""
    global _client
    if _client is None:
        try:
            candidate = docker.from_env(version="auto", timeout=30)
            candidate.ping()
        except (docker.errors.DockerException, *CONNECTION_ERRORS) as error:
            raise DockerNotRunning(
                "No Docker engine answers on this machine.",
                hint=start_hint(),
                output=str(error)[:300],
            ) from None
        _client = candidate
    return _client


def reconnect() -> None:
    """Forget the connection, so the next call connects again (after DOCKER_HOST changed)."""
    global _client
    _client = None


def full_name(name: str) -> str:
    """The engine-side name of a container or image: ``web`` becomes ``alice-01-web``."""
    prefix = chapter().prefix
    return name if name.startswith(prefix + "-") else f"{prefix}-{name}"


def find_container(engine_name: str) -> Container | None:
    """The container with this engine-side name, or None."""
    with engine_errors(f"docker inspect {engine_name}"):
        try:
            return client().containers.get(engine_name)
        except docker.errors.NotFound:
            return None


def find_image(tag: str) -> Image | None:
    """The image with this tag (or id), or None."""
    with engine_errors(f"docker image inspect {tag}"):
        try:
            return client().images.get(tag)
        except docker.errors.NotFound:
            return None
