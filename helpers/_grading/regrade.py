"""What a class run grades again, and what it reports.

A submission is unchanged only while nothing of what its grading made is lost: its record is from
this very content and source and, if it was graded, the gradebook holds the grade that record
wrote (``gradebook.verified``: a deleted gradebook, another one, or an older copy that holds an
earlier grade all fail it) and its ``autograded/`` and ``feedback/`` are there. Anything else is
due, with its reason. What a run reports is read back from the gradebook and the records
(``read_back``), never from the run's memory."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .course import Source
from .gradebook import UNVERIFIED, Held, State, held, verified
from .intake import Submission
from .outcome import ERROR, GRADED, Outcome

# Why a submission is graded in a run (the summary counts them).
FORCED = "forced"
NEW = "new"
CHANGED = "changed"
SOURCE_CHANGED = "the assignment's source changed"
GRADE_MISSING = "its grade is missing from the gradebook"
OTHER_GRADE = "the gradebook holds another grade for it"
NOT_GRADED = "the gradebook holds a grade for it, but it could not be graded"
NO_AUTOGRADED = "autograded/ missing"
NO_FEEDBACK = "feedback/ missing"


def _notebooks_of(submission: Submission, source: Source | None) -> list[str]:
    """The assignment's notebooks this submission handed in."""
    if source is None:
        return [submission.assignment]
    handed_in = [
        n for n in sorted(source.notebooks) if (submission.folder / f"{n}.ipynb").is_file()
    ]
    return handed_in or sorted(source.notebooks)


def reason(
    root: Path,
    submission: Submission,
    source: Source | None,
    entry: dict[str, Any] | None,
    grade: Held | None,
    force: bool = False,
) -> str | None:
    """Why ``submission`` must be graded in this run, or None when it is unchanged: its record
    (``entry``) is from this very content and source and, if graded, the gradebook holds that
    record's grade (``grade``: what the gradebook holds for it) and its ``autograded/`` and
    ``feedback/`` are there; if it could not be graded, the gradebook holds no grade for it and
    its feedback page is there."""
    if force:
        return FORCED
    if entry is None:
        return NEW
    if entry.get("digest") != submission.digest:
        return CHANGED
    if entry.get("source") != (source.digest if source else ""):
        return SOURCE_CHANGED
    s, a = submission.student, submission.assignment
    notebooks = _notebooks_of(submission, source)
    feedback = root / "feedback" / s / a
    if entry.get("status") == GRADED:
        if grade is None:
            return GRADE_MISSING
        if not verified(entry, grade):
            return OTHER_GRADE
        autograded = root / "autograded" / s / a
        if not all((autograded / f"{n}.ipynb").is_file() for n in notebooks):
            return NO_AUTOGRADED
    elif grade is not None:
        return NOT_GRADED
    if not all((feedback / f"{n}.html").is_file() for n in notebooks):
        return NO_FEEDBACK
    return None


def due(
    root: Path,
    found: Iterable[Submission],
    known: dict[str, Source],
    state: State,
    force: bool = False,
) -> dict[str, str]:
    """Each of ``found`` to grade in this run, by key, with the reason it is due."""
    grades = held(root)
    due = {}
    for s in found:
        why = reason(root, s, known.get(s.assignment), state.get(s.key), grades.get(s.key), force)
        if why:
            due[s.key] = why
    return due


def tally(keys: Iterable[str], due: dict[str, str]) -> list[tuple[str, int]]:
    """How many of ``keys`` were due for each reason, most first (a changed source names its
    assignment)."""
    counts: dict[str, int] = {}
    for key in keys:
        why = due.get(key, NEW)
        if why == SOURCE_CHANGED:
            why += f" ({key.split('/', 1)[1]})"
        counts[why] = counts.get(why, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])


def read_back(
    root: Path,
    found: Iterable[Submission],
    due: dict[str, str],
    graded_now: Iterable[str],
    state: State,
    ran: Iterable[Outcome] = (),
) -> list[Outcome]:
    """What a run reports: how each of ``found`` that was unchanged or recorded in this run (not
    one an interruption stopped) stands now, from the gradebook (scores) and the records (status,
    reason, flags). A record that says graded while the gradebook does not hold its grade shows as
    a grading error. ``ran`` are this run's outcomes: their log, time and namespaces are kept
    (never their scores)."""
    grades = held(root)
    this_run = {o.key: o for o in ran}
    now = set(graded_now)
    outcomes = []
    for key in (s.key for s in found if s.key in now or s.key not in due):
        entry = state.get(key)
        if entry is None:
            continue
        outcome = Outcome(
            entry["student"],
            entry["assignment"],
            entry["status"],
            entry.get("reason", ""),
            seconds=entry.get("seconds", 0.0),
            flags=entry.get("flags", ""),
            credentials=entry.get("credentials", ""),
        )
        grade = grades.get(key)
        if outcome.graded:
            if grade is not None and verified(entry, grade):
                outcome.score, outcome.max_score = grade.score, grade.max_score
            else:
                outcome.status, outcome.reason = ERROR, UNVERIFIED
        if key in this_run:
            earlier = this_run[key]
            outcome.seconds, outcome.log = earlier.seconds, earlier.log
            outcome.namespaces, outcome.result = earlier.namespaces, earlier.result
        outcomes.append(outcome)
    return outcomes
