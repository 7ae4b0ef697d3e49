"""What was handed in: the submissions in ``submitted/<student>/<assignment>/``, a digest of each,
and the checks that need no kernel (is it a notebook, of this assignment, with the graded cells as
the assignment made them).

Stray files (``.DS_Store``, ``__MACOSX``, ``Thumbs.db``, checkpoints) are skipped everywhere.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .course import Source, cells_of, digest_folder, ignore_patterns, ignored
from .outcome import CHECKSUM, INVALID, WRONG_ASSIGNMENT, Outcome

JUNK = ["__MACOSX", "Thumbs.db", "desktop.ini", "*~"]


def is_junk(name: str) -> bool:
    return name.startswith(".") or ignored(name, [*JUNK, *ignore_patterns()])


def strays(folder: str | Path, names: list[str]) -> list[str]:
    """What a copy of a submission leaves out (``shutil.copytree``'s ``ignore``): junk, and every
    symbolic link: a link in a submission (to /etc/shadow, to your SSH key) would have the grader
    copy what it points at into the student's sandbox."""
    return [n for n in names if is_junk(n) or Path(folder, n).is_symlink()]


def copy_in(incoming: Path, submitted: Path) -> None:
    """Copy a collected folder of ``<student>/<assignment>/`` into ``submitted/``, without strays."""
    for student in sorted(incoming.iterdir()):
        if student.is_symlink() or not student.is_dir() or is_junk(student.name):
            continue
        shutil.copytree(student, submitted / student.name, dirs_exist_ok=True, ignore=strays)


@dataclass(frozen=True)
class Submission:
    student: str
    assignment: str
    folder: Path
    digest: str

    @property
    def key(self) -> str:
        return f"{self.student}/{self.assignment}"


def find(
    submitted: Path,
    students: Iterable[str] | None = None,
    assignments: Iterable[str] | None = None,
) -> list[Submission]:
    """Every ``submitted/<student>/<assignment>/`` folder, filtered by student and assignment."""
    wanted_students = set(students or [])
    wanted_assignments = set(assignments or [])
    found: list[Submission] = []
    if not submitted.is_dir():
        return found
    patterns = [*JUNK, *ignore_patterns()]
    for student in sorted(submitted.iterdir()):
        if student.is_symlink() or not student.is_dir() or is_junk(student.name):
            continue
        if wanted_students and student.name not in wanted_students:
            continue
        for folder in sorted(student.iterdir()):
            if folder.is_symlink() or not folder.is_dir() or is_junk(folder.name):
                continue
            if wanted_assignments and folder.name not in wanted_assignments:
                continue
            found.append(
                Submission(student.name, folder.name, folder, digest_folder(folder, patterns))
            )
    return found


def _load(path: Path) -> tuple[Any, str | None]:
    """The notebook, or the one-line reason it is not one."""
    import nbformat

    raw = path.read_bytes()
    if not raw.strip():
        return None, f"{path.name} is empty (0 bytes of notebook)"
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as error:
        return None, f"{path.name} is not text: {error.reason} at byte {error.start}"
    except json.JSONDecodeError as error:
        return None, (
            f"{path.name} is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); was it saved completely?"
        )
    if not isinstance(data, dict) or ("cells" not in data and "worksheets" not in data):
        return None, f"{path.name} is JSON but not a Jupyter notebook (no cells)"
    try:
        notebook = nbformat.reads(raw.decode(), as_version=4)  # type: ignore[no-untyped-call]
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several kinds
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return None, f"{path.name} is not a valid notebook: {type(error).__name__}: {first}"[:300]
    if not notebook.cells:
        return None, f"{path.name} has no cells (saved empty?)"
    return notebook, None


def _names(ids: Iterable[str], limit: int = 3) -> str:
    ids = sorted(ids)
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def check(
    submission: Submission, source: Source | None, others: Sequence[Source]
) -> Outcome | None:
    """The reason this submission cannot be graded, found without running it; None if it can.

    Edits nbgrader repairs by itself (a test cell's source or points, a lock) pass: it restores
    them from the gradebook. What it cannot repair, or would grade unfairly (a graded cell it
    cannot find scores 0 without a word), stops here with the cell named."""

    def outcome(status: str, reason: str) -> Outcome:
        return Outcome(submission.student, submission.assignment, status, reason)

    if source is None:
        known = ", ".join(s.name for s in others) or "none"
        return outcome(
            WRONG_ASSIGNMENT,
            f"there is no assignment named {submission.assignment!r} (known: {known})",
        )
    handed_in = sorted(
        p
        for p in submission.folder.glob("*.ipynb")
        if p.is_file() and not p.is_symlink() and not is_junk(p.name)
    )
    expected = sorted(source.notebooks)
    present = [p for p in handed_in if p.stem in source.notebooks]
    if not present:
        found = ", ".join(p.name for p in handed_in) or "no notebook at all"
        owner = next(
            (
                other.name
                for other in others
                if any(p.stem in other.notebooks for p in handed_in) and other.name != source.name
            ),
            None,
        )
        where = f" (that is {owner}'s notebook)" if owner else ""
        return outcome(
            WRONG_ASSIGNMENT,
            f"expected {', '.join(n + '.ipynb' for n in expected)}, found {found}{where}",
        )
    for path in present:
        notebook, problem = _load(path)
        if problem:
            return outcome(INVALID, problem)
        wanted = source.notebooks[path.stem]
        cells = cells_of(notebook)
        if not set(cells) & set(wanted):
            owner = next(
                (o.name for o in others if o.name != source.name and set(cells) & o.all_ids()),
                None,
            )
            if owner:
                return outcome(
                    WRONG_ASSIGNMENT,
                    f"{path.name} holds {owner}'s cells ({_names(set(cells) & _ids(others, owner))}), "
                    f"none of {source.name}'s",
                )
            return outcome(
                WRONG_ASSIGNMENT,
                f"{path.name} has none of {source.name}'s graded cells "
                "(the lesson, or another notebook saved under this name?)",
            )
        missing = [grade_id for grade_id in wanted if grade_id not in cells]
        unknown = [grade_id for grade_id in cells if grade_id not in wanted]
        if missing and unknown:
            cell = wanted[missing[0]]
            return outcome(
                CHECKSUM,
                f"{path.name}: {cell.role} {missing[0]!r} is missing and {unknown[0]!r} is not "
                "in the assignment: was its grade_id renamed?",
            )
        if missing:
            cell = wanted[missing[0]]
            return outcome(
                CHECKSUM,
                f"{path.name}: {cell.role} {missing[0]!r} is missing, or its nbgrader metadata "
                f"was removed ({len(missing)} graded cell(s) not found)",
            )
        if unknown:
            return outcome(
                CHECKSUM,
                f"{path.name}: cell {unknown[0]!r} is not in the assignment "
                "(an nbgrader cell was added or renamed)",
            )
        for grade_id, cell in cells.items():
            original = wanted[grade_id]
            for flag in ("grade", "solution"):
                if getattr(cell, flag) != getattr(original, flag):
                    return outcome(
                        CHECKSUM,
                        f"{path.name}: {original.role} {grade_id!r} had its nbgrader metadata "
                        f"edited ({flag}: {str(getattr(cell, flag)).lower()}, "
                        f"should be {str(getattr(original, flag)).lower()})",
                    )
    return None


def _ids(sources: Sequence[Source], name: str) -> set[str]:
    return next((s.all_ids() for s in sources if s.name == name), set())
