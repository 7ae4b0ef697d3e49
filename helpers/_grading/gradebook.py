"""The class's records, written from one place: the nbgrader gradebook, the grading state beside
it (what was graded, from which content, and how it ended), grades.csv, and the feedback page of a
submission that could not be graded."""

from __future__ import annotations

import contextlib
import csv
import html
import json
import os
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._errors import CourseError
from .course import Scratch, define
from .outcome import GRADED, MISSING, Outcome

STATE_DIR = "grading"
COLUMNS = [
    "assignment",
    "duedate",
    "timestamp",
    "student_id",
    "last_name",
    "first_name",
    "email",
    "raw_score",
    "late_submission_penalty",
    "score",
    "max_score",
    "status",
    "reason",
    "flags",
]


def _url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


class State:
    """``grading/state.json``: per submission, the digests it was graded from and how it ended.
    A submission is graded again only when its content or its assignment's source changed."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_DIR / "state.json"
        try:
            data = json.loads(self.path.read_text())
            self.entries: dict[str, dict[str, Any]] = dict(data.get("submissions", {}))
        except (OSError, ValueError):
            self.entries = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, outcome: Outcome, digest: str, source: str) -> None:
        self.entries[outcome.key] = {
            "student": outcome.student,
            "assignment": outcome.assignment,
            "digest": digest,
            "source": source,
            "status": outcome.status,
            "reason": outcome.reason,
            "flags": outcome.flags,
            "score": outcome.score,
            "max_score": outcome.max_score,
            "seconds": round(outcome.seconds, 1),
            "graded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".part")
        partial.write_text(json.dumps({"version": 1, "submissions": self.entries}, indent=1))
        os.replace(partial, self.path)

    def outcome(self, key: str) -> Outcome | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        return Outcome(
            entry["student"],
            entry["assignment"],
            entry["status"],
            entry.get("reason", ""),
            score=entry.get("score"),
            max_score=entry.get("max_score"),
            seconds=entry.get("seconds", 0.0),
            flags=entry.get("flags", ""),
        )


def log_path(root: Path, student: str, assignment: str) -> Path:
    return root / STATE_DIR / "logs" / student / f"{assignment}.log"


# --- definitions ----------------------------------------------------------------------------


def sync_definitions(root: Path, scratch: Scratch, regraded: dict[str, set[str]]) -> None:
    """Write the definitions of the assignments being graded into the class gradebook.

    ``regraded`` names, per assignment, the students graded again in this run. nbgrader refuses
    to add or remove graded cells of an assignment that has submissions; when the source changed
    that way and every submission of it is being graded again, the stale ones are dropped first.
    """
    from nbgrader.api import Gradebook, MissingEntry

    gradebook = root / "gradebook.db"
    for name in scratch.sources:
        try:
            define(scratch.folder, [name], gradebook)
            continue
        except CourseError as error:
            if "submissions associated" not in str(error):
                raise
        with Gradebook(_url(root)) as book:
            try:
                graded = {s.student.id for s in book.find_assignment(name).submissions}
            except MissingEntry:
                graded = set()
            stale = graded - regraded.get(name, set())
            if stale:
                raise CourseError(
                    f"solutions/{name} added or removed graded cells since {len(stale)} "
                    "submission(s) of it were graded, and this run would not grade them again.",
                    hint=f"Grade every submission of it again: make grade ASSIGNMENT={name} "
                    "(without STUDENT=).",
                )
            book.remove_assignment(name)
        define(scratch.folder, [name], gradebook)


# --- results ---------------------------------------------------------------------------------


def merge(root: Path, outcome: Outcome) -> None:
    """Write a graded submission's scores into the class gradebook, as nbgrader's SaveAutoGrades
    would: automatic scores and comments; a grader's manual scores stay."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    result = outcome.result
    with Gradebook(_url(root)) as book:
        book.update_or_create_student(outcome.student)
        stamp = result.get("timestamp")
        kwargs = {"timestamp": parse_utc(stamp)} if stamp else {}
        book.update_or_create_submission(outcome.assignment, outcome.student, **kwargs)
        for name, data in result.get("notebooks", {}).items():
            notebook = book.find_submission_notebook(name, outcome.assignment, outcome.student)
            notebook.late_submission_penalty = data.get("late_submission_penalty")
            for grade in notebook.grades:
                found = data["grades"].get(grade.name)
                if found is None:
                    continue
                grade.auto_score = found["auto_score"]
                grade.needs_manual_grade = bool(
                    found["needs_manual_grade"] or grade.manual_score is not None
                )
            for comment in notebook.comments:
                comment.auto_comment = data["comments"].get(comment.name)
        book.db.commit()


def forget(root: Path, student: str, assignment: str) -> None:
    """Drop a submission's grades (its new version could not be graded)."""
    from nbgrader.api import Gradebook, MissingEntry

    if not (root / "gradebook.db").exists():
        return
    with Gradebook(_url(root)) as book, contextlib.suppress(MissingEntry):
        book.remove_submission(assignment, student)


def replace_folder(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    if source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target)


def ungradable_feedback(root: Path, outcome: Outcome, notebooks: Iterable[str]) -> Path:
    """The student's feedback page for a submission that could not be graded."""
    folder = root / "feedback" / outcome.student / outcome.assignment
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    body = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(outcome.assignment)}: not graded</title></head><body>"
        f"<h1>{html.escape(outcome.assignment)}: not graded yet</h1>"
        f"<p>Status: <b>{html.escape(outcome.status)}</b></p>"
        f"<p>Reason: {html.escape(outcome.reason)}</p>"
        "<p>Nothing is lost: your instructor has this message and will look at your "
        "submission. If you can, hand in a corrected notebook.</p></body></html>\n"
    )
    for name in notebooks:
        (folder / f"{name}.html").write_text(body)
    return folder


# --- grades.csv --------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def export_csv(root: Path, path: Path | None = None) -> Path:
    """Every student and assignment: graded (with scores), not gradable (status and reason, no
    score), or missing (not handed in: no score, not 0)."""
    from nbgrader.api import Gradebook

    target = path or root / "grades.csv"
    state = State(root)
    rows: dict[tuple[str, str], dict[str, str]] = {}
    students: set[str] = set()
    assignments: dict[str, dict[str, str]] = {}

    def entry_of(student: str, assignment: str) -> dict[str, Any]:
        return state.entries.get(f"{student}/{assignment}", {})

    if (root / "gradebook.db").exists():
        with Gradebook(_url(root)) as book:
            people = {s.id: s for s in book.students}
            students.update(people)
            for assignment in book.assignments:
                info = {
                    "duedate": _text(assignment.duedate),
                    "max_score": _text(assignment.max_score),
                }
                if assignment.submissions:
                    assignments[assignment.name] = info
                for submission in assignment.submissions:
                    student = people[submission.student.id]
                    penalty = submission.late_submission_penalty or 0.0
                    rows[(student.id, assignment.name)] = {
                        "assignment": assignment.name,
                        **info,
                        "timestamp": _text(submission.timestamp),
                        "student_id": student.id,
                        "last_name": _text(student.last_name),
                        "first_name": _text(student.first_name),
                        "email": _text(student.email),
                        "raw_score": _text(submission.score),
                        "late_submission_penalty": _text(penalty),
                        "score": _text(max(0.0, submission.score - penalty)),
                        "status": GRADED,
                        "reason": _text(entry_of(student.id, assignment.name).get("reason")),
                        "flags": _text(entry_of(student.id, assignment.name).get("flags")),
                    }
    for entry in state.entries.values():
        key = (entry["student"], entry["assignment"])
        students.add(entry["student"])
        if entry["status"] == GRADED:
            continue  # the gradebook holds it
        rows[key] = {
            "assignment": entry["assignment"],
            "student_id": entry["student"],
            "max_score": _text(assignments.get(entry["assignment"], {}).get("max_score")),
            "status": entry["status"],
            "reason": _text(entry.get("reason")),
        }
    real = set(assignments) | {
        e["assignment"] for e in state.entries.values() if e.get("source")
    }  # assignments with a source (not a folder named after no assignment)
    for assignment in real:
        for student in students:
            if (student, assignment) not in rows:
                rows[(student, assignment)] = {
                    "assignment": assignment,
                    "student_id": student,
                    "max_score": _text(assignments.get(assignment, {}).get("max_score")),
                    "status": MISSING,
                    "reason": "not handed in",
                }
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, restval="")
        writer.writeheader()
        for key in sorted(rows, key=lambda k: (k[1], k[0])):
            writer.writerow(rows[key])
    return target


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
