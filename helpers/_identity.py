"""Who is working, and on which chapter: the prefix on everything a notebook creates.

Self-paced learners are named by $COURSE_LEARNER, or else their OS user. While nbgrader autogrades,
the notebook runs in ``autograded/<student>/<assignment>/``, and the student id from that path wins,
so two students graded one after the other never touch each other's containers or namespaces.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ._errors import CourseError

_current_chapter: str | None = None


def _dns_label(text: str, max_length: int) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return label[:max_length].strip("-") or "learner"


def learner_label(name: str) -> str:
    """A learner's id as it prefixes their containers and namespaces: at most 20 characters,
    DNS-safe. An id that had to change to get there (too long, capitals, dots) ends in a short
    hash of the whole id, so two ids never share a prefix (alice.smith-2026 and
    alice.smith-2027 stay apart)."""
    label = _dns_label(name, 63)
    if label == name and len(label) <= 20:
        return label
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{label[:13].strip('-') or 'learner'}-{digest}"


def grading_mode() -> str | None:
    """``"autograde"`` or ``"validate"`` while nbgrader runs the notebook, else None."""
    return os.environ.get("NBGRADER_EXECUTION") or None


def learner_name() -> str:
    """The learner's id, safe to use in container, image and namespace names."""
    cwd = Path.cwd()
    if grading_mode() == "autograde" and cwd.parent.parent.name == "autograded":
        return learner_label(cwd.parent.name)
    return learner_label(os.environ.get("COURSE_LEARNER") or getpass.getuser())


@dataclass(frozen=True)
class Chapter:
    """The learner and chapter a notebook works in. Everything it creates carries ``prefix``."""

    name: str
    learner: str

    @property
    def number(self) -> str:
        return self.name.split("-", 1)[0]

    @property
    def prefix(self) -> str:
        """Prefix of container and image names, e.g. ``alice-01``."""
        return f"{self.learner}-{self.number}"

    @property
    def namespace(self) -> str:
        """This learner's Kubernetes namespace for the chapter, e.g. ``alice-03-pods``."""
        return _dns_label(f"{self.learner}-{self.name}", 63)

    @property
    def labels(self) -> dict[str, str]:
        return {"course.learner": self.learner, "course.chapter": self.name}

    def __str__(self) -> str:
        return (
            f"Learner {self.learner!r}, chapter {self.name!r}: containers are named "
            f"{self.prefix}-<name>, the namespace is {self.namespace}"
        )

    __repr__ = __str__


def chapter(name: str | None = None) -> Chapter:
    """Set (with a name) or get the chapter this notebook works on.

    >>> chapter("01-containers").prefix   # doctest: +SKIP
    'alice-01'
    """
    global _current_chapter
    if name is not None:
        if not re.fullmatch(r"\d\d-[a-z0-9-]+", name):
            raise CourseError(
                f"{name!r} is not a chapter name.", hint="Chapter names look like '01-containers'."
            )
        _current_chapter = name
    if _current_chapter is None:
        raise CourseError(
            "No chapter is set for this notebook.",
            hint="Run the notebook's setup cell first, e.g. helpers.setup('01-containers').",
        )
    return Chapter(_current_chapter, learner_name())
