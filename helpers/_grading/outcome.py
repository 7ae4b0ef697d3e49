"""How one submission ended: graded with a score, or not gradable with a one-line reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GRADED = "graded"
INVALID = "invalid notebook"
WRONG_ASSIGNMENT = "wrong assignment"
CHECKSUM = "checksum mismatch"
TIMED_OUT = "timed out"
KERNEL_DIED = "kernel died"
MEMORY_LIMIT = "memory limit"  # the OOM killer ended a process at the submission's memory limit
ERROR = "grading error"
MISSING = "missing"  # grades.csv only: an assignment the student did not hand in
INTERRUPTED = "interrupted"  # the instructor stopped the run (Ctrl+C); graded again next time

STATUSES = (
    GRADED,
    INVALID,
    WRONG_ASSIGNMENT,
    CHECKSUM,
    TIMED_OUT,
    KERNEL_DIED,
    MEMORY_LIMIT,
    ERROR,
)


@dataclass
class Outcome:
    student: str
    assignment: str
    status: str
    reason: str = ""  # why it is not gradable; for a graded one, notes (output cut, ...)
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)  # the worker's result (grades to merge)
    log: str | None = None  # the full log of this submission's grading
    namespaces: list[str] = field(default_factory=list)  # deleted after grading, maybe not gone
    flags: str = ""  # answer cells that reach for the grading itself (tampering.py)
    credentials: str = ""  # which cluster credentials the notebook had (runner.CLASSROOM, ...)

    @property
    def key(self) -> str:
        return f"{self.student}/{self.assignment}"

    @property
    def graded(self) -> bool:
        return self.status == GRADED

    def needs_instructor(self) -> bool:
        return self.status not in (GRADED, MISSING) or bool(self.flags)

    def line(self) -> str:
        """One line for the run's progress output."""
        if self.graded:
            text = f"{_points(self.score)}/{_points(self.max_score)}"
        else:
            text = f"{self.status}: {self.reason}"
        if self.graded and self.reason:
            text += f"  ({self.reason})"
        if self.flags:
            text += f"  ⚑ flagged: {self.flags}"
        return f"{self.key}  {text}  [{self.seconds:.0f} s]"


def _points(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


def one_line(text: str, limit: int = 240) -> str:
    """The first non-empty line of ``text``, at most ``limit`` characters."""
    for line in str(text).splitlines():
        if line.strip():
            line = " ".join(line.split())
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
