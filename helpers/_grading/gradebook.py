"""The class's records, written from one place: the nbgrader gradebook, the grading state beside
it (what was graded, from which content, and how it ended), grades.csv, and the feedback page of a
submission that could not be graded.

The state alone never says a submission is graded: each grade ``make grade`` writes into the
gradebook gets a random stamp, kept both in a small table of ours in ``gradebook.db`` (nbgrader and
alembic ignore tables they do not know) and in the submission's record. A record's grade counts
only while the gradebook still holds that stamp, for that nbgrader submission, with the automatic
score the record holds (``verified``; ``regrade`` decides from it what is due)."""

from __future__ import annotations

import contextlib
import csv
import html
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._errors import CourseError
from .course import Scratch, define, ensure_alembic_on_path
from .outcome import ERROR, GRADED, MISSING, Outcome

STATE_DIR = "grading"
STAMPS = "course_grading_stamps"  # our table in gradebook.db: the grades make grade wrote
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
    """``grading/state.json``: per submission, the digests it was graded from, how it ended and,
    for a graded one, the stamp of the grade it wrote into the gradebook (``due`` says when it is
    graded again)."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_DIR / "state.json"
        try:
            data = json.loads(self.path.read_text())
            self.entries: dict[str, dict[str, Any]] = dict(data.get("submissions", {}))
        except (OSError, ValueError):
            self.entries = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, outcome: Outcome, digest: str, source: str, stamp: str | None = None) -> None:
        self.entries[outcome.key] = {
            "student": outcome.student,
            "assignment": outcome.assignment,
            "digest": digest,
            "source": source,
            "status": outcome.status,
            "reason": outcome.reason,
            "flags": outcome.flags,
            "credentials": outcome.credentials,
            "score": outcome.score,
            "max_score": outcome.max_score,
            "seconds": round(outcome.seconds, 1),
            "graded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "stamp": stamp,
        }

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".part")
        partial.write_text(json.dumps({"version": 2, "submissions": self.entries}, indent=1))
        os.replace(partial, self.path)


def log_path(root: Path, student: str, assignment: str) -> Path:
    return root / STATE_DIR / "logs" / student / f"{assignment}.log"


# --- what the gradebook holds -----------------------------------------------------------------

UNVERIFIED = (
    "recorded as graded, but the gradebook does not hold that grade (make grade grades it again)"
)


@dataclass(frozen=True)
class Held:
    """One submission's grade as the class gradebook holds it."""

    score: float  # nbgrader's: a grader's manual scores where there are some
    max_score: float
    auto_score: float  # the automatic scores alone: what make grade wrote
    stamp: str | None  # of the grade make grade wrote, if it is still this submission's


def held(root: Path) -> dict[str, Held]:
    """Every submission the gradebook holds a grade for, by ``student/assignment``."""
    path = root / "gradebook.db"
    if not path.exists():
        return {}
    ensure_alembic_on_path()
    from nbgrader.api import Grade, Gradebook, SubmittedAssignment, SubmittedNotebook
    from sqlalchemy import func, inspect, text
    from sqlalchemy.exc import DatabaseError

    found: dict[str, Held] = {}
    try:
        with Gradebook(_url(root)) as book:
            auto = dict(
                book.db.query(SubmittedNotebook.assignment_id, func.sum(Grade.auto_score))
                .join(Grade, Grade.notebook_id == SubmittedNotebook.id)
                .group_by(SubmittedNotebook.assignment_id)
                .all()
            )
            stamps: dict[str, tuple[str, str]] = {}
            if inspect(book.engine).has_table(STAMPS):
                rows = book.db.execute(text(f"SELECT key, submission_id, stamp FROM {STAMPS}"))
                stamps = {key: (submission, stamp) for key, submission, stamp in rows}
            for submission in book.db.query(SubmittedAssignment).all():
                key = f"{submission.student.id}/{submission.assignment.name}"
                written = stamps.get(key)
                found[key] = Held(
                    score=float(submission.score or 0.0),
                    max_score=float(submission.max_score or 0.0),
                    auto_score=float(auto.get(submission.id) or 0.0),
                    stamp=written[1] if written and written[0] == submission.id else None,
                )
    except DatabaseError as error:
        raise CourseError(
            f"{path} is not an nbgrader gradebook ({type(error).__name__}).",
            hint="Move it away (make grade then grades every submission again into a new one).",
        ) from None
    return found


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < 1e-6


def verified(entry: dict[str, Any], grade: Held | None) -> bool:
    """Whether the gradebook holds the very grade this graded record wrote."""
    return (
        grade is not None
        and bool(entry.get("stamp"))
        and grade.stamp == entry.get("stamp")
        and _same(grade.auto_score, entry.get("score"))
    )


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


def merge(root: Path, outcome: Outcome) -> str:
    """Write a graded submission's scores into the class gradebook, as nbgrader's SaveAutoGrades
    would: automatic scores and comments; a grader's manual scores stay. Returns the new stamp of
    this grade, written in the same transaction (the submission's record keeps it)."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc
    from sqlalchemy import text

    result = outcome.result
    with Gradebook(_url(root)) as book:
        book.update_or_create_student(outcome.student)
        handed_in = result.get("timestamp")
        kwargs = {"timestamp": parse_utc(handed_in)} if handed_in else {}
        submission = book.update_or_create_submission(outcome.assignment, outcome.student, **kwargs)
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
        stamp = uuid.uuid4().hex
        _stamp_table(book)
        book.db.execute(
            text(
                f"INSERT OR REPLACE INTO {STAMPS} (key, submission_id, stamp) "
                "VALUES (:key, :submission, :stamp)"
            ),
            {"key": outcome.key, "submission": submission.id, "stamp": stamp},
        )
        book.db.commit()
    return stamp


def _stamp_table(book: Any) -> None:
    from sqlalchemy import text

    book.db.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {STAMPS} (key TEXT PRIMARY KEY, "
            "submission_id TEXT NOT NULL, stamp TEXT NOT NULL)"
        )
    )


def forget(root: Path, student: str, assignment: str) -> None:
    """Drop a submission's grades (its new version could not be graded)."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy import text

    if not (root / "gradebook.db").exists():
        return
    with Gradebook(_url(root)) as book:
        with contextlib.suppress(MissingEntry):
            book.remove_submission(assignment, student)
        _stamp_table(book)
        book.db.execute(
            text(f"DELETE FROM {STAMPS} WHERE key = :key"), {"key": f"{student}/{assignment}"}
        )
        book.db.commit()


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
    score), or missing (not handed in: no score, not 0). A submission recorded as graded whose
    grade the gradebook does not hold (a lost gradebook, an older copy) is a grading error, never
    the older grade."""
    from nbgrader.api import Gradebook

    target = path or root / "grades.csv"
    state = State(root)
    grades = held(root)
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
        graded = entry["status"] == GRADED
        if graded and verified(entry, grades.get("/".join(key))):
            continue  # the gradebook holds it
        rows[key] = {
            "assignment": entry["assignment"],
            "student_id": entry["student"],
            "max_score": _text(assignments.get(entry["assignment"], {}).get("max_score")),
            "status": ERROR if graded else entry["status"],
            "reason": UNVERIFIED if graded else _text(entry.get("reason")),
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
