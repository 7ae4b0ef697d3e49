"""Plain value types that both the Docker and the Kubernetes helpers return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import CommandFailed

# A container port mapped to a host port on 127.0.0.1 (``{80: 8080}``), to ``(ip, port)``, or to
# None for "any free port".
PortMap = Mapping[int, int | tuple[str, int | None] | None]


@dataclass(frozen=True)
class Usage:
    """CPU (percent of one core) and memory (MiB) of one container or pod at one moment."""

    name: str
    cpu_percent: float
    memory_mib: float


@dataclass(frozen=True)
class ExecResult:
    """What a command run inside a container did, like ``subprocess.CompletedProcess``."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str

    def check_returncode(self) -> None:
        """Raise CommandFailed if the command exited non-zero."""
        if self.returncode != 0:
            raise CommandFailed(
                f"The command exited with code {self.returncode}.",
                command=self.command,
                output=self.stderr or self.stdout,
            )

    def __str__(self) -> str:
        return self.stdout + self.stderr

    def __repr__(self) -> str:
        output = (self.stdout + self.stderr).strip()
        return f"<exit code {self.returncode}>" + (f"\n{output}" if output else "")
