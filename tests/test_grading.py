"""The nbgrader round trip for every assignment, for real: release, validate, grade the
solution, the blank release and planted wrong answers as a class (all at once; `make grade`
uses JOBS), feedback, and the CSV export."""

from __future__ import annotations

import filecmp
import html
import json
import multiprocessing
import os
import re
import shutil
import tempfile
import threading
import time
from concurrent import futures
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest

from helpers import _grading, k8s
from helpers._grading.cleanup import remove_learner_resources
from tests.conftest import BETWEEN_GRADINGS, GRADING_RUNS, LESSON_RUNS
from tests.planted import PLANTED, Planted, submissions

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.cluster]
REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = _grading.assignments(REPO)
# The grading machinery (a second student, a raising cell, a hung cell) is the same for every
# assignment: it is proven on a Docker chapter and a Kubernetes one (the two quickest to run),
# not on all of them.
MACHINERY = ("01-containers", "02-architecture")
# Submissions at once, per chapter. The chapters are graded in the background while the lighter
# tests run (start_gradings), so this shares the two cores with them.
GRADING_JOBS = int(os.environ.get("COURSE_GRADING_JOBS", "4"))


def machinery_only(graded: Any) -> None:
    if graded["assignment"] not in MACHINERY:
        pytest.skip(f"the grading machinery is proven on {' and '.join(MACHINERY)}")


def _notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ipynb"))


def submit(
    root: Path,
    student: str,
    assignment: str,
    *,
    blank: bool = False,
    answers: dict[str, str] | None = None,
) -> Path:
    """Put a submission in root/submitted/<student>/<assignment>/: the solution, the blank
    release, or the solution with some answer cells replaced."""
    source = root / ("exercises" if blank else "solutions") / assignment
    target = root / "submitted" / student / assignment
    target.mkdir(parents=True, exist_ok=True)
    for path in _notebooks(source):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if answers and grade_id in answers:
                cell.source = answers.pop(grade_id)
        nbformat.write(notebook, target / path.name)
    assert not answers, f"planted answers name cells that do not exist: {answers}"
    return target


def _cleanup_students(prefix: str, *, but: str | None = None) -> None:
    """Remove the containers and namespaces of every student whose id starts with prefix, except
    the one named `but`."""
    from helpers._docker.engine import client
    from helpers._grading.cleanup import learner_of

    spared = learner_of(but) if but else None
    for container in client().containers.list(all=True, filters={"label": "course.learner"}):
        learner = str(container.labels.get("course.learner", ""))
        if learner.startswith(prefix) and learner != spared:
            container.remove(force=True)
    for ns in k8s.list_objects("namespaces"):
        learner = ns.labels.get("course.learner", "")
        if learner.startswith(prefix) and learner != spared:
            k8s.delete_namespace(ns.name, wait_until_gone=False)


# What the tests look at after a chapter's grading, besides its scores: the solution's containers
# and pods (01 and 02: a second student must not disturb them; 04: the events of its self-heal
# test). Every other submission's work is removed as `make grade` removes it: the node's CPU
# requests are shared with the chapters graded next.
KEPT_FOR_INSPECTION = (*MACHINERY, "04-deployments")


def grade_chapter(assignment: str) -> dict[str, Any]:
    """Release the assignment in a private course folder, hand in every kind of submission and
    grade them as a class, all at once (the solution's work kept where KEPT_FOR_INSPECTION says;
    the `graded` fixture removes it)."""
    root = Path(tempfile.mkdtemp(prefix=f"graded-{assignment}-"))
    shutil.copytree(REPO / "solutions" / assignment, root / "solutions" / assignment)
    _grading.release(root, [assignment])
    prefix = f"t{int(time.time()) % 100000}-{assignment[:2]}-"
    results: dict[str, Any] = {"assignment": assignment, "root": root, "prefix": prefix}
    students = {"solution": prefix + "solution", "blank": prefix + "blank"}
    submit(root, prefix + "solution", assignment)
    submit(root, prefix + "blank", assignment, blank=True)
    for number, group in enumerate(submissions(PLANTED[assignment]), 1):
        answers = {cell: code for planted in group for cell, code in planted.answers.items()}
        submit(root, f"{prefix}planted-{number}", assignment, answers=answers)
        students.update({planted.name: f"{prefix}planted-{number}" for planted in group})
    keep = assignment in KEPT_FOR_INSPECTION
    try:
        with (root / "grading.log").open("w") as log:
            run = _grading.grade(root, jobs=GRADING_JOBS, keep=keep, out=log)
    finally:
        if keep:
            _cleanup_students(prefix, but=prefix + "solution")
    results["run"] = run
    results["students"] = students
    for name, student in students.items():
        outcome = run[f"{student}/{assignment}"]
        if outcome.graded:
            results[name] = _grading.scores(root, assignment, student)
        else:
            results[name] = {"score": None, "max_score": None, "tests": {}, "why": outcome}
    return results


def _as_grading_tests() -> None:
    os.environ["COURSE_LEARNER"] = "pytest"
    os.environ.pop("NBGRADER_EXECUTION", None)


def start_gradings(session: pytest.Session) -> None:
    """Grade every selected chapter in the background, one chapter after another, once the
    lessons (which keep both cores busy) are done: the lighter tests leave the cores half idle
    meanwhile, and this file's tests collect the results (conftest.py orders them late)."""
    wanted = sorted(
        {
            item.callspec.params["graded"]
            for item in session.items
            if item.module is not None
            and item.module.__name__.endswith("test_grading")
            and "graded" in getattr(item, "fixturenames", ())
        }
    )
    if not wanted:
        return
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_as_grading_tests,
    )
    started: dict[str, Future[dict[str, Any]]] = {name: Future() for name in wanted}
    lessons = list(session.config.stash.get(LESSON_RUNS, {}).values())

    def in_order() -> None:
        futures.wait(lessons)
        for name in wanted:
            try:
                with BETWEEN_GRADINGS:
                    started[name].set_result(pool.submit(grade_chapter, name).result())
            except BaseException as error:  # the chapter's tests report it
                started[name].set_exception(error)
            time.sleep(1)  # a Lock is not fair: a test waiting for it gets it now, not never

    threading.Thread(target=in_order, name="gradings", daemon=True).start()
    session.config.stash[GRADING_RUNS] = started
    session.config.add_cleanup(lambda: pool.shutdown(wait=True, cancel_futures=True))


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request: pytest.FixtureRequest) -> Any:
    """A chapter graded as a class (grade_chapter), in the background if it was started there."""
    started = request.config.stash.get(GRADING_RUNS, {}).get(request.param)
    results = started.result() if started else grade_chapter(request.param)
    try:
        yield results
    finally:
        _cleanup_students(results["prefix"])
        shutil.rmtree(results["root"], ignore_errors=True)


def test_exercises_are_in_sync_with_solutions(graded: Any) -> None:
    generated = graded["root"] / "exercises" / graded["assignment"]
    committed = REPO / "exercises" / graded["assignment"]
    names = sorted(p.name for p in generated.iterdir())
    assert names == sorted(p.name for p in committed.iterdir()), "run `make exercises`"
    for name in names:
        assert filecmp.cmp(generated / name, committed / name, shallow=False), (
            f"exercises/{graded['assignment']}/{name} differs from what solutions/ generates: "
            "run `make exercises` and commit the result"
        )


def test_release_has_no_solutions_or_hidden_tests(graded: Any) -> None:
    for path in _notebooks(REPO / "exercises" / graded["assignment"]):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        assert "raise NotImplementedError()" in text


def test_validator_fails_every_visible_test_of_the_release(graded: Any) -> None:
    """What a student's Validate button says of a blank notebook: every visible test fails
    (the autograded blank scoring 0 could hide a visible test that passes)."""
    from nbgrader.validator import Validator

    try:
        for path in _notebooks(REPO / "exercises" / graded["assignment"]):
            failures = Validator(invert=True).validate(str(path))
            assert failures == {}, "every visible test of the blank release must fail"
    finally:
        remove_learner_resources("pytest", timeout=None)  # the validator ran as this learner


def test_validator_passes_the_source(graded: Any) -> None:
    # Every solution already runs in the graded fixture, scoring full marks: the validator's
    # own run of it is proven on the machinery chapters only.
    machinery_only(graded)
    from nbgrader.validator import Validator

    try:
        for path in _notebooks(REPO / "solutions" / graded["assignment"]):
            assert Validator().validate(str(path)) == {}, "the solution passes its visible tests"
    finally:
        remove_learner_resources("pytest", timeout=None)  # the validator ran as this learner


def test_every_submission_is_graded_and_only_switched_off_checks_are_flagged(graded: Any) -> None:
    run, students = graded["run"], graded["students"]
    assert run.sandboxed, "the class was graded without the sandbox (bwrap's probe failed)"
    assert all(outcome.graded for outcome in run.outcomes), run
    expected = {students[p.name] for p in PLANTED[graded["assignment"]] if p.flagged}
    flagged = {outcome.student for outcome in run.outcomes if outcome.flags}
    assert flagged == expected, [(o.student, o.flags) for o in run.outcomes if o.flags]
    assert run.exit_code == (3 if expected else 0)


def why(graded: Any, name: str, tests: Any) -> str:
    """What the named test cells of a submission printed as their error, from its autograded
    notebook: a failure in CI says why without the run's folder."""
    student = graded["students"][name]
    folder = graded["root"] / "autograded" / student / graded["assignment"]
    said = []
    for path in _notebooks(folder):
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            for output in cell.get("outputs", []) if grade_id in tests else []:
                if output.get("output_type") == "error":
                    said.append(f"{grade_id}: {output['ename']}: {output['evalue'][:400]}")
    return "\n".join(said) or "(no error output)"


def test_solution_scores_full_marks(graded: Any) -> None:
    solution = graded["solution"]
    assert solution["max_score"] > 0
    failed = [test for test, score in solution["tests"].items() if score == 0]
    assert solution["score"] == solution["max_score"], (
        solution["tests"],
        why(graded, "solution", failed),
    )


def test_blank_release_scores_zero(graded: Any) -> None:
    assert graded["blank"]["score"] == 0, graded["blank"]["tests"]


def test_there_are_enough_planted_wrong_answers() -> None:
    for assignment in ASSIGNMENTS:
        assert len(PLANTED.get(assignment, [])) >= 3, f"{assignment} needs 3 planted wrong answers"


def test_each_planted_wrong_answer_loses_exactly_its_points(graded: Any) -> None:
    """Planted answers share a submission only when they change different cells and must lose
    different tests, so each one's lost points are read test by test from its submission."""
    full = graded["solution"]["tests"]
    for group in submissions(PLANTED[graded["assignment"]]):
        result = graded[group[0].name]
        assert 0 < result["score"] < result["max_score"], ([p.name for p in group], result)
        lost = {
            test: full[test] - score
            for test, score in result["tests"].items()
            if score != full[test]
        }
        for planted in group:
            caught = {test: lost.pop(test, 0) for test in planted.loses}
            assert caught == planted.loses, (
                f"{planted.name!r}: lost {caught}, expected {planted.loses}; its tests said: "
                + why(graded, planted.name, planted.loses)
            )
        assert not lost, f"{[p.name for p in group]}: also lost {lost}, which none should"


def test_a_test_with_side_effects_runs_once(graded: Any) -> None:
    """04's self-heal test deletes one of shop's pods itself. The grader runs it in its own
    kernel instead of the student's, not in both: shop's ReplicaSet made 2 pods at the setup,
    2 more when scaled to 4, and 1 for the pod the test deleted; a second run would make a
    sixth."""
    if graded["assignment"] != "04-deployments":
        pytest.skip("the self-heal test of 04 is the one that counts its own effect")
    from helpers._grading.cleanup import learner_of

    learner = learner_of(graded["students"]["solution"])
    (namespace,) = [
        ns.name
        for ns in k8s.list_objects("namespaces", selector=f"course.learner={learner}")
        if ns.labels.get("course.chapter") == "04-deployments"
    ]
    events = k8s.request("GET", f"/api/v1/namespaces/{namespace}/events").get("items") or []
    made = [
        event
        for event in events
        if event.get("reason") == "SuccessfulCreate"
        and event["involvedObject"].get("kind") == "ReplicaSet"
        and event["involvedObject"].get("name", "").startswith("shop-")
    ]
    assert sum(event.get("count") or 1 for event in made) == 5, [e["message"] for e in made]
    assert graded["solution"]["tests"]["test_self_heals"] == 1


def hidden_test_lines(assignment: str) -> list[str]:
    """Lines of code that appear only inside the hidden test regions of the source notebook."""
    hidden, elsewhere = set(), set()
    for cell in nbformat.read(_notebooks(REPO / "solutions" / assignment)[0], 4).cells:
        inside = False
        for line in cell.source.splitlines():
            inside = (inside or "BEGIN HIDDEN TESTS" in line) and "END HIDDEN TESTS" not in line
            (hidden if inside else elsewhere).add(line.strip())
    return sorted(line for line in hidden - elsewhere if len(line) > 20 and "HIDDEN" not in line)


def test_feedback_and_csv_export(graded: Any) -> None:
    root, assignment, prefix = graded["root"], graded["assignment"], graded["prefix"]
    folder = _grading.feedback(root, assignment, prefix + "planted-1")
    pages = list(folder.glob("*.html"))
    assert pages, "no feedback HTML was written"
    page = pages[0].read_text()
    planted: Planted = PLANTED[assignment][0]
    for test in planted.loses:
        assert test in page, f"feedback should show the failed test {test}"
    result = graded[planted.name]
    assert f"Score: {result['score']:.1f} / {result['max_score']:.1f}" in page
    shown = html.unescape(re.sub(r"<[^>]+>", "", page))
    submitted = "\n".join(
        cell.source
        for path in _notebooks(root / "submitted" / (prefix + "planted-1") / assignment)
        for cell in nbformat.read(path, 4).cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    )
    # The student's answers are on the page as they should be; a line they share is no evidence.
    hidden = [line for line in hidden_test_lines(assignment) if line not in submitted]
    assert hidden, "the assignment has hidden tests"
    shown_lines = {line.strip() for line in shown.splitlines()}
    leaked = [line for line in hidden if line in shown_lines]
    assert not leaked, "feedback shows the hidden tests' code"
    rows = _grading.read_csv(_grading.export_csv(root))
    by_student = {row["student_id"]: row for row in rows if row["assignment"] == assignment}
    expected = {prefix + "solution": graded["solution"], prefix + "blank": graded["blank"]}
    for student, result in expected.items():
        assert float(by_student[student]["raw_score"]) == result["score"]
        assert float(by_student[student]["max_score"]) == result["max_score"]


def test_two_students_do_not_disturb_each_other(graded: Any) -> None:
    machinery_only(graded)
    from helpers._docker.engine import client

    root, assignment, prefix = graded["root"], graded["assignment"], graded["prefix"]

    def belongings(student: str) -> dict[str, str]:
        found = {
            f"container/{c.name}": str(c.id)
            for c in client().containers.list(
                all=True, filters={"label": f"course.learner={student}"}
            )
        }
        for ns in k8s.list_objects("namespaces"):
            if ns.labels.get("course.learner") == student:
                found.update(
                    {f"pod/{p.name}": p.metadata["uid"] for p in k8s.list_objects("pods", ns.name)}
                )
        return found

    first, second = prefix + "solution", prefix + "student-b"
    before = belongings(first)
    assert before, "the graded solution should have left its containers or pods for inspection"
    submit(root, second, assignment)
    _grading.grade(root, students=[second], jobs=1, keep=True)
    result = _grading.scores(root, assignment, second)
    assert result["score"] == result["max_score"]
    assert belongings(first) == before, "grading the second student changed the first one's work"
    assert belongings(second), "the second student's work is missing"


def test_a_student_cell_that_raises_is_marked_down(graded: Any) -> None:
    machinery_only(graded)
    root, assignment, prefix = graded["root"], graded["assignment"], graded["prefix"]
    first_answer = next(iter(PLANTED[assignment][0].answers))
    submit(
        root,
        prefix + "raises",
        assignment,
        answers={first_answer: 'raise RuntimeError("a student bug")'},
    )
    result = _grading.autograde(root, assignment, prefix + "raises")
    assert 0 <= result["score"] < result["max_score"]
    autograded = root / "autograded" / (prefix + "raises") / assignment
    text = "".join(p.read_text() for p in _notebooks(autograded))
    assert "a student bug" in text, "the student's error should be shown in the graded notebook"


def test_a_hung_cell_is_bounded_by_the_timeout(graded: Any) -> None:
    machinery_only(graded)
    root, assignment, prefix = graded["root"], graded["assignment"], graded["prefix"]
    answer_cells = [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in nbformat.read(_notebooks(REPO / "solutions" / assignment)[0], 4).cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    ]
    hung = answer_cells[-1]
    submit(root, prefix + "hangs", assignment, answers={hung: "import time\ntime.sleep(3600)"})
    started = time.monotonic()
    result = _grading.autograde(root, assignment, prefix + "hangs", timeout=15)
    assert time.monotonic() - started < 300
    assert 0 < result["score"] < result["max_score"], result
    graded_nb = json.loads(
        next((root / "autograded" / (prefix + "hangs") / assignment).glob("*.ipynb")).read_text()
    )
    assert any(
        "Timeout" in json.dumps(c.get("outputs", []))
        or "timed out" in json.dumps(c.get("outputs", [])).lower()
        for c in graded_nb["cells"]
    )


def test_make_grade_autogrades_a_folder_writes_feedback_and_a_csv(tmp_path: Path) -> None:
    """What `make grade SUBMISSIONS=folder` runs: copy in, autograde against the source (no
    release), feedback, CSV, and the student's containers removed afterwards."""
    assignment = "01-containers"
    root = tmp_path / "course"
    shutil.copytree(REPO / "solutions" / assignment, root / "solutions" / assignment)
    incoming = tmp_path / "collected"
    student = f"t{int(time.time()) % 100000}-grade"
    folder = incoming / student / assignment
    folder.mkdir(parents=True)
    for path in _notebooks(REPO / "solutions" / assignment):
        shutil.copy(path, folder / path.name)
    try:
        run = _grading.grade(root, incoming)
        table = run.table
        from helpers._docker.engine import client

        left = client().containers.list(all=True, filters={"label": f"course.learner={student}"})
    finally:
        _cleanup_students(student)
    assert table.column("student") == [student]
    assert table[0]["status"] == "graded", run
    assert float(table[0]["score"]) == float(table[0]["max"]) > 0
    assert run.exit_code == 0
    assert not left, "grading must remove the student's containers"
    assert not (root / "exercises").exists(), "grading must not release into exercises/"
    assert list((root / "feedback" / student / assignment).glob("*.html"))
    rows = _grading.read_csv(root / "grades.csv")
    assert [(r["student_id"], float(r["raw_score"]), r["status"]) for r in rows] == [
        (student, float(table[0]["score"]), "graded")
    ]
