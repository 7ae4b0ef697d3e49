"""What `make grade` regrades, decided against a real nbgrader gradebook (a temporary SQLite file
written through nbgrader's own API) and real folders, without running a kernel: a lost, replaced
or older gradebook, a missing autograded/ or feedback/ folder, a changed source, and the
not-gradable submissions that have no grade by design. What a run reports (its table, its
summary's counts and grades.csv) is read back from the gradebook."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from helpers import _grading
from helpers._grading import course, gradebook, intake, regrade, run
from helpers._grading.cleanup import learner_of, remove_learner_resources
from helpers._grading.outcome import GRADED, INVALID, Outcome
from helpers._grading.progress import Progress
from helpers._grading.runner import Job
from tests.test_class_grading import CELL_TIMEOUT, SUBMISSION_TIMEOUT, integration

A = "96-regrade"
TESTS = {"test_a": 2.0, "test_b": 1.0}


def _notebook(hidden: str = "assert x == 5") -> Any:
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    answer = new_code_cell("### BEGIN SOLUTION\nx = 5\n### END SOLUTION")
    answer.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": "answer_x",
        "locked": False,
        "schema_version": 3,
        "solution": True,
    }
    notebook.cells = [answer]
    for name, points in TESTS.items():
        test = new_code_cell(
            f"assert x is not None\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS"
        )
        test.metadata["nbgrader"] = {
            "grade": True,
            "grade_id": name,
            "locked": True,
            "points": points,
            "schema_version": 3,
            "solution": False,
        }
        notebook.cells.append(test)
    return notebook


class Class:
    """A course folder with one assignment defined in its gradebook, and the run's pieces."""

    def __init__(self, root: Path, define: bool = True) -> None:
        self.root = root
        folder = root / "solutions" / A
        folder.mkdir(parents=True)
        nbformat.write(_notebook(), folder / f"{A}.ipynb")
        if define:  # else the class run defines it
            course.empty_gradebook(root / "gradebook.db")
            self.define()

    def define(self) -> None:
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as book:
            book.update_or_create_assignment(A)
            book.update_or_create_notebook(A, A)
            book.update_or_create_solution_cell("answer_x", A, A)
            for name, points in TESTS.items():
                book.update_or_create_grade_cell(name, A, A, max_score=points, cell_type="code")

    def hand_in(self, student: str, answer: str = "x = 5", text: str | None = None) -> None:
        folder = self.root / "submitted" / student / A
        folder.mkdir(parents=True, exist_ok=True)
        if text is not None:
            (folder / f"{A}.ipynb").write_text(text)
        else:
            notebook = _notebook()
            notebook.cells[0].source = answer
            nbformat.write(notebook, folder / f"{A}.ipynb")

    def found(self) -> list[intake.Submission]:
        return intake.find(self.root / "submitted")

    def submission(self, student: str) -> intake.Submission:
        return next(s for s in self.found() if s.student == student)

    def known(self) -> dict[str, course.Source]:
        return {A: course.source(self.root, A)}

    def due(self, force: bool = False) -> dict[str, str]:
        state = gradebook.State(self.root)
        return regrade.due(self.root, self.found(), self.known(), state, force)

    def record(self, student: str, **scores: float) -> Outcome:
        """Record a grading of ``student`` as the run does (run._record): graded with these
        automatic scores per test, or, without scores, an invalid notebook."""
        submission = self.submission(student)
        source = self.known()[A]
        state = gradebook.State(self.root)
        progress = Progress(1, 1, io.StringIO())
        the_run = run.ClassRun([])
        if not scores:
            outcome = Outcome(student, A, INVALID, f"{A}.ipynb is not valid JSON")
            run._record(self.root, the_run, state, submission, outcome, progress, 0, source=source)
            return the_run.outcomes[0]
        work = self.root.parent / f"work-{student}"
        shutil.rmtree(work, ignore_errors=True)
        for kind, name in (("autograded", f"{A}.ipynb"), ("feedback", f"{A}.html")):
            folder = work / kind / student / A
            folder.mkdir(parents=True)
            (folder / name).write_text(f"{kind} of {student}: {scores}")
        result = {
            "notebooks": {
                A: {
                    "late_submission_penalty": None,
                    "grades": {
                        name: {"auto_score": score, "needs_manual_grade": False}
                        for name, score in scores.items()
                    },
                    "comments": {},
                }
            }
        }
        outcome = Outcome(
            student,
            A,
            GRADED,
            score=sum(scores.values()),
            max_score=sum(TESTS.values()),
            result=result,
        )
        job = Job(
            submission=submission,
            source=source,
            template=self.root / "gradebook.db",
            work=work,
            timeout=None,
            submission_timeout=60,
            cell_output_limit=1000,
            notebook_output_limit=1000,
        )
        run._record(self.root, the_run, state, submission, outcome, progress, 0, job)
        return the_run.outcomes[0]

    def report(self, graded_now: list[str], due: dict[str, str]) -> run.ClassRun:
        """What a run that graded ``graded_now`` reports (as run._grade reads it back)."""
        the_run = run.ClassRun([], graded_now=graded_now, due=due)
        state = gradebook.State(self.root)
        the_run.outcomes = regrade.read_back(self.root, self.found(), due, graded_now, state)
        the_run.csv = gradebook.export_csv(self.root)
        return the_run


def agree(the_run: run.ClassRun, root: Path) -> None:
    """The table, the summary's counts, grades.csv and the gradebook say the same."""
    assert the_run.csv is not None
    rows = {
        f"{r['student_id']}/{r['assignment']}": r
        for r in _grading.read_csv(the_run.csv)
        if r["status"] != "missing"
    }
    table = {f"{r['student']}/{r['assignment']}": r for r in the_run.table}
    assert set(rows) == set(table), (rows, table)
    held = gradebook.held(root)
    for key, row in table.items():
        assert rows[key]["status"] == row["status"], (key, rows[key], row)
        if row["status"] == GRADED:
            assert float(rows[key]["raw_score"]) == float(row["score"]) == held[key].score, key
        else:
            assert rows[key]["raw_score"] == row["score"] == "", key
            assert key not in held, f"{key} is not graded but the gradebook holds a grade"
    graded = sum(r["status"] == GRADED for r in table.values())
    assert f"{len(table)} submission(s): {graded} graded" in the_run.summary()


@pytest.fixture
def klass(tmp_path: Path) -> Class:
    """alice (graded 3/3), bob (graded 2/3) and eve (an invalid notebook), as a run records them."""
    c = Class(tmp_path / "course")
    c.hand_in("alice")
    c.hand_in("bob", "x = 4")
    c.hand_in("eve", text='{"cells": [')
    c.record("alice", test_a=2, test_b=1)
    c.record("bob", test_a=2, test_b=0)
    c.record("eve")
    return c


def test_a_class_as_it_was_graded_is_unchanged_and_reads_back_its_grades(klass: Class) -> None:
    assert klass.due() == {}
    report = klass.report([], {})
    assert {o.key: (o.status, o.score) for o in report.outcomes} == {
        f"alice/{A}": (GRADED, 3.0),
        f"bob/{A}": (GRADED, 2.0),
        f"eve/{A}": (INVALID, None),
    }
    agree(report, klass.root)
    assert "0 graded in this run, 3 unchanged since an earlier run" in report.summary()


def test_a_deleted_gradebook_makes_the_graded_ones_due(klass: Class) -> None:
    (klass.root / "gradebook.db").unlink()
    assert klass.due() == {
        f"alice/{A}": regrade.GRADE_MISSING,
        f"bob/{A}": regrade.GRADE_MISSING,
    }, "eve could not be graded: she has no grade by design, and nothing of hers changed"
    # Until graded again, a record without its grade is reported as an error, never as graded.
    report = klass.report([], {})
    assert report[f"alice/{A}"].status == "grading error", report
    rows = {r["student_id"]: r for r in _grading.read_csv(klass.root / "grades.csv")}
    assert rows["alice"]["status"] == "grading error" and rows["alice"]["raw_score"] == ""
    assert rows["eve"]["status"] == INVALID
    # The run grades them again into a new gradebook: then nothing is due.
    course.empty_gradebook(klass.root / "gradebook.db")
    klass.define()
    klass.record("alice", test_a=2, test_b=1)
    klass.record("bob", test_a=2, test_b=0)
    assert klass.due() == {}
    graded_now = [f"alice/{A}", f"bob/{A}"]
    report = klass.report(graded_now, dict.fromkeys(graded_now, regrade.GRADE_MISSING))
    assert report.why() == [f"2 due: {regrade.GRADE_MISSING}"]
    agree(report, klass.root)


def test_another_gradebook_with_the_same_submissions_graded_otherwise_is_not_trusted(
    klass: Class, tmp_path: Path
) -> None:
    """A gradebook from elsewhere (plain nbgrader, another machine) that holds a grade for each
    submission, even the same score, is not the one this course's records were written to."""
    other = Class(tmp_path / "elsewhere")
    other.hand_in("alice")
    other.hand_in("bob", "x = 4")
    other.hand_in("eve", text='{"cells": [')
    other.record("alice", test_a=2, test_b=1)
    other.record("bob", test_a=2, test_b=0)
    other.record("eve", test_a=0, test_b=0)  # graded there: a grade eve was never given here
    shutil.copy(other.root / "gradebook.db", klass.root / "gradebook.db")
    assert klass.due() == {
        f"alice/{A}": regrade.OTHER_GRADE,
        f"bob/{A}": regrade.OTHER_GRADE,
        f"eve/{A}": regrade.NOT_GRADED,
    }


def test_an_older_copy_of_the_gradebook_regrades_what_was_graded_since(klass: Class) -> None:
    older = klass.root.parent / "gradebook-older.db"
    shutil.copy(klass.root / "gradebook.db", older)
    # bob hands in again (regraded: a new score); alice is graded again with the same score
    # (FORCE=1): an older copy holds her earlier grade, equal in points, but not this one.
    klass.hand_in("bob", "x = 5")
    assert klass.due() == {f"bob/{A}": regrade.CHANGED}
    klass.record("bob", test_a=2, test_b=1)
    klass.record("alice", test_a=2, test_b=1)
    assert klass.due() == {}
    shutil.copy(older, klass.root / "gradebook.db")
    assert klass.due() == {
        f"alice/{A}": regrade.OTHER_GRADE,
        f"bob/{A}": regrade.OTHER_GRADE,
    }
    report = klass.report([], {})
    assert {o.key: o.status for o in report.outcomes}[f"bob/{A}"] == "grading error"
    rows = {r["student_id"]: r for r in _grading.read_csv(klass.root / "grades.csv")}
    assert rows["bob"]["raw_score"] == "", "the older copy's 2 points must not reach grades.csv"
    klass.record("alice", test_a=2, test_b=1)
    klass.record("bob", test_a=2, test_b=1)
    assert klass.due() == {}
    report = klass.report([f"alice/{A}", f"bob/{A}"], {})
    assert report[f"bob/{A}"].score == 3.0
    agree(report, klass.root)


def test_a_missing_autograded_or_feedback_folder_makes_it_due(klass: Class) -> None:
    shutil.rmtree(klass.root / "autograded" / "alice" / A)
    shutil.rmtree(klass.root / "feedback" / "bob" / A)
    (klass.root / "feedback" / "eve" / A / f"{A}.html").unlink()
    assert klass.due() == {
        f"alice/{A}": regrade.NO_AUTOGRADED,
        f"bob/{A}": regrade.NO_FEEDBACK,
        f"eve/{A}": regrade.NO_FEEDBACK,
    }
    klass.record("alice", test_a=2, test_b=1)
    klass.record("bob", test_a=2, test_b=0)
    klass.record("eve")
    assert klass.due() == {}


def test_a_changed_source_makes_every_submission_of_it_due(klass: Class) -> None:
    path = klass.root / "solutions" / A / f"{A}.ipynb"
    nbformat.write(_notebook(hidden="assert x in (4, 5)"), path)
    assert klass.due() == dict.fromkeys(
        (f"alice/{A}", f"bob/{A}", f"eve/{A}"), regrade.SOURCE_CHANGED
    )
    klass.record("alice", test_a=2, test_b=1)
    klass.record("bob", test_a=2, test_b=1)
    klass.record("eve")
    assert klass.due() == {}
    the_run = run.ClassRun([], graded_now=[f"{s}/{A}" for s in ("alice", "bob", "eve")])
    the_run.due = dict.fromkeys(the_run.graded_now, regrade.SOURCE_CHANGED)
    assert the_run.why() == [f"3 due: the assignment's source changed ({A})"]


def test_new_changed_and_forced(klass: Class) -> None:
    klass.hand_in("carol")
    klass.hand_in("eve", "x = 5")
    assert klass.due() == {f"carol/{A}": regrade.NEW, f"eve/{A}": regrade.CHANGED}
    assert set(klass.due(force=True).values()) == {regrade.FORCED}
    assert len(klass.due(force=True)) == 4


def test_a_graders_manual_score_is_kept_and_reported_without_a_regrade(klass: Class) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{klass.root / 'gradebook.db'}") as book:
        grade = book.find_grade("test_b", A, A, "bob")
        grade.manual_score = 1.0  # formgrader: the grader gives bob the point
        book.db.commit()
    assert klass.due() == {}, "a manual score is the grader's, not a reason to regrade"
    report = klass.report([], {})
    assert report[f"bob/{A}"].score == 3.0
    agree(report, klass.root)


def test_a_grade_rewritten_by_hand_is_not_the_recorded_one(klass: Class) -> None:
    """nbgrader autograde run by hand on the class gradebook rewrites the automatic scores in
    place (same submission, same stamp): the score the record holds no longer matches."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{klass.root / 'gradebook.db'}") as book:
        book.find_grade("test_a", A, A, "alice").auto_score = 0.0
        book.db.commit()
    assert klass.due() == {f"alice/{A}": regrade.OTHER_GRADE}


def test_records_of_an_older_make_grade_have_no_stamp_and_are_graded_once_more(
    klass: Class,
) -> None:
    path = klass.root / "grading" / "state.json"
    data = json.loads(path.read_text())
    for entry in data["submissions"].values():
        entry.pop("stamp")
    path.write_text(json.dumps({"version": 1, "submissions": data["submissions"]}))
    assert klass.due() == {f"alice/{A}": regrade.OTHER_GRADE, f"bob/{A}": regrade.OTHER_GRADE}


def test_the_summary_says_why_each_was_graded_in_a_line_per_reason() -> None:
    due = {f"s{n}/{A}": regrade.GRADE_MISSING if n < 28 else regrade.NEW for n in range(30)}
    the_run = run.ClassRun([], graded_now=list(due), due=due)
    assert the_run.why() == [
        f"28 due: {regrade.GRADE_MISSING}",
        "2 due: new",
    ]
    assert len(the_run.summary().splitlines()) == 3, the_run.summary()


def test_an_unreadable_gradebook_stops_the_run_with_a_hint(tmp_path: Path) -> None:
    from helpers._errors import CourseError

    (tmp_path / "gradebook.db").write_text("not a database, but a note someone saved here\n" * 50)
    with pytest.raises(CourseError, match="not an nbgrader gradebook"):
        gradebook.held(tmp_path)


@pytest.mark.slow
def test_nbgrader_commands_work_on_a_gradebook_with_the_stamps_table(klass: Class) -> None:
    """Our table lives in nbgrader's SQLite file: nbgrader's own commands (and its alembic
    migrations) must still read and upgrade it, and leave the table alone."""
    nbgrader = [sys.executable, "-m", "nbgrader"]
    root = str(klass.root)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}

    def call(*args: str) -> str:
        done = subprocess.run(
            [*nbgrader, *args, f"--CourseDirectory.root={root}"],
            cwd=root,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout + done.stderr

    listed = call("db", "student", "list")
    assert "alice" in listed and "bob" in listed, listed
    call("db", "upgrade")
    call("export", f"--to={klass.root / 'nbgrader.csv'}")
    exported = {r["student_id"]: r for r in _grading.read_csv(klass.root / "nbgrader.csv")}
    assert float(exported["alice"]["raw_score"]) == 3.0 and float(exported["bob"]["raw_score"]) == 2
    assert klass.due() == {}, "nbgrader's commands must leave the stamps as they were"


@integration
def test_make_grade_regrades_exactly_what_is_due_and_reports_what_the_gradebook_holds(
    tmp_path: Path,
) -> None:
    """A real class run, then an instructor's accidents: the gradebook deleted, an older copy of
    it restored, one student's autograded/ deleted, a hidden test changed in solutions/. Each
    following run grades exactly what is due, says why, and its table, grades.csv and the
    gradebook agree."""
    c = Class(tmp_path / "course", define=False)
    prefix = f"r{int(time.time()) % 100000}-"
    a, b, e = (f"{prefix}{name}/{A}" for name in ("a", "b", "e"))
    c.hand_in(prefix + "a", "x = 5")
    c.hand_in(prefix + "b", "x = 4")
    c.hand_in(prefix + "e", text='{"cells": [')
    book = c.root / "gradebook.db"

    def grade() -> run.ClassRun:
        done = _grading.grade(
            c.root, jobs=2, timeout=CELL_TIMEOUT, submission_timeout=SUBMISSION_TIMEOUT
        )
        print(done)
        agree(done, c.root)
        return done

    def scores(done: run.ClassRun) -> dict[str, float | None]:
        return {o.key: o.score for o in done.outcomes}

    try:
        first = grade()
        assert set(first.graded_now) == {a, b, e}
        assert scores(first) == {a: 3.0, b: 0.0, e: None}
        assert first[e].status == INVALID
        older = tmp_path / "gradebook-older.db"
        shutil.copy(book, older)

        # The gradebook is lost, and b hands in a corrected notebook.
        book.unlink()
        c.hand_in(prefix + "b", "x = 5")
        lost = grade()
        assert sorted(lost.graded_now) == [a, b], "e could not be graded and did not change"
        assert lost.due == {a: regrade.GRADE_MISSING, b: regrade.CHANGED}
        assert scores(lost) == {a: 3.0, b: 3.0, e: None}
        assert f"1 due: {regrade.GRADE_MISSING}" in lost.summary()

        # An older copy comes back: it holds b's earlier 0 and an earlier grade of a.
        shutil.copy(older, book)
        restored = grade()
        assert sorted(restored.graded_now) == [a, b]
        assert set(restored.due.values()) == {regrade.OTHER_GRADE}
        assert scores(restored) == {a: 3.0, b: 3.0, e: None}

        shutil.rmtree(c.root / "autograded" / (prefix + "a") / A)
        redone = grade()
        assert redone.graded_now == [a] and redone.due == {a: regrade.NO_AUTOGRADED}
        assert (c.root / "autograded" / (prefix + "a") / A / f"{A}.ipynb").is_file()

        # The instructor changes the hidden test: every submission of it is graded again, e too.
        nbformat.write(_notebook(hidden="assert x == 6"), c.root / "solutions" / A / f"{A}.ipynb")
        changed = grade()
        assert set(changed.graded_now) == {a, b, e}
        assert set(changed.due.values()) == {regrade.SOURCE_CHANGED}
        assert f"3 due: the assignment's source changed ({A})" in changed.summary()
        assert scores(changed) == {a: 0.0, b: 0.0, e: None}, "graded with the new hidden test"

        assert grade().graded_now == []
    finally:
        for name in ("a", "b", "e"):
            remove_learner_resources(learner_of(prefix + name), timeout=60)
