"""Every error the course helpers raise, under one base class.

    CourseError                  anything helpers could not do; .hint says what to try next
    ├── CommandFailed            an external command failed; .command is pasteable
    ├── WaitTimeout              something did not happen in time (last state + where to look)
    ├── DockerError
    │   ├── DockerNotRunning     no Docker engine answers
    │   ├── ImageNotFound        the image is not on this machine (and cannot be pulled)
    │   ├── ContainerNotFound    no container of yours has that name
    │   ├── NameTaken            a container with that name already exists
    │   ├── PortInUse            the host port is already taken
    │   └── BuildFailed          docker build stopped at a step
    ├── KubernetesError
    │   ├── ClusterUnreachable   the API server does not answer
    │   ├── Forbidden            your credentials may not do that
    │   ├── ManifestRejected     the API server refused a manifest (names the field)
    │   └── ObjectNotFound       no such object
    └── CheckFailed              a grading check failed (also an AssertionError, for nbgrader)

Errors from the docker and kubernetes client libraries are turned into these at the edge, in one
place per library (``_docker.engine.engine_errors`` and ``_k8s.client.api_errors``), so a learner
reads one sentence and a fix instead of a stack trace from deep inside a library. A bug in the
helpers themselves (a TypeError, say) is not dressed up as one of these.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


class CourseError(Exception):
    """Something the helpers could not do. ``hint`` is the next thing to try."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        command: Sequence[str] | str | None = None,
        output: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.command = (
            command if isinstance(command, str) or command is None else shlex.join(command)
        )
        self.output = output

    def __str__(self) -> str:
        lines = [self.message]
        if self.command:
            lines.append(f"  Command: {self.command}")
        if self.output:
            lines += [
                "  Output:",
                *("    " + line for line in self.output.strip().splitlines()[-15:]),
            ]
        if self.hint:
            lines.append(f"  Fix: {self.hint}")
        return "\n".join(lines)


class CommandFailed(CourseError):
    """An external command (kind, kubectl, ctr, ...) exited non-zero."""


class WaitTimeout(CourseError):
    """Something did not happen in time: a condition, a command, a page that should answer."""


class DockerError(CourseError):
    """A Docker operation failed."""


class DockerNotRunning(DockerError):
    """No Docker engine answers."""


class ImageNotFound(DockerError):
    """The image is not on this machine."""


class ContainerNotFound(DockerError):
    """No container with that name."""


class NameTaken(DockerError):
    """A container with that name already exists."""


class PortInUse(DockerError):
    """The host port is already taken."""


class BuildFailed(DockerError):
    """docker build failed."""


class KubernetesError(CourseError):
    """A Kubernetes operation failed."""


class ClusterUnreachable(KubernetesError):
    """The API server does not answer."""


class Forbidden(KubernetesError):
    """The credentials in use may not do that."""


class ManifestRejected(KubernetesError):
    """The API server refused a manifest."""


class ObjectNotFound(KubernetesError):
    """No such Kubernetes object."""


class CheckFailed(CourseError, AssertionError):
    """A grading check failed: what was expected, what was found, where to look."""

    def __str__(self) -> str:
        lines = [f"✗ {self.message}"]
        if self.output:
            lines += ["  " + line for line in self.output.strip().splitlines()]
        if self.hint:
            lines.append(f"  Look at: {self.hint}")
        return "\n".join(lines)
