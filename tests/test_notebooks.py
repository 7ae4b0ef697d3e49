"""Every lesson runs top to bottom in a fresh kernel, twice (the second run proves it cleans up
after itself), against the real engine and cluster, and follows the chapter standard."""

from __future__ import annotations

import multiprocessing
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from tests.conftest import LESSON_RUNS, LESSON_TIMES, timeline

REPO = Path(__file__).resolve().parent.parent
LESSONS = sorted((REPO / "course").glob("[0-9][0-9]-*.ipynb"))
HELPER_CALL = re.compile(r"\b(?:docker|k8s)\.\w+\(|\bhelpers\.(?:fetch|doctor)\(")
DRAWS = re.compile(r"k8s\.(?:architecture|pod_diagram)\(|\.stop\(\)\s*$")


def execute(path: Path, timeout: int = 180) -> tuple[nbformat.NotebookNode, float]:
    notebook = nbformat.read(path, as_version=4)
    started = time.monotonic()
    # Unix sockets, not TCP: a port picked free for one kernel can be taken by another lesson's
    # before it binds it ("Address already in use", seen with three lessons at once).
    with tempfile.TemporaryDirectory(prefix="lesson-kernel-") as sockets:
        kernel = KernelManager(kernel_name="python3", transport="ipc", ip=f"{sockets}/k")
        try:
            NotebookClient(
                notebook,
                km=kernel,
                timeout=timeout,
                allow_errors=True,
                resources={"metadata": {"path": str(path.parent)}},
            ).execute()
        finally:  # nbclient leaves a kernel it did not make running
            if kernel.has_kernel:
                kernel.shutdown_kernel(now=True)
    return notebook, time.monotonic() - started


def run_twice(path: Path) -> list[tuple[nbformat.NotebookNode, float]]:
    runs = []
    for attempt in (1, 2):
        started = time.time()
        runs.append(execute(path))
        timeline(started, f"lesson {path.stem} {attempt}")
    return runs


# Lessons spend most of their time waiting for the cluster, so several run at once, each in its
# own namespace and kernel; the longest start first. Each lesson's two runs stay in order.
# Measured on 2 cores: 3 at a time 396 s, 4 at a time 354 s.
LESSON_JOBS = int(os.environ.get("COURSE_LESSON_JOBS", "4"))
# The lessons' own learner: the lighter tests that run meanwhile act as "pytest".
LESSON_LEARNER = "lessons"


def _as_lesson_learner() -> None:
    os.environ["COURSE_LEARNER"] = LESSON_LEARNER
    os.environ.pop("NBGRADER_EXECUTION", None)


def start_lessons(session: pytest.Session) -> None:
    """Start every selected lesson's two runs in the background, as soon as the tests are
    collected: they run while the lighter tests (which mostly wait for the cluster) do, and
    their tests collect the results (conftest.py orders those tests late)."""
    wanted = sorted(
        {
            item.callspec.params["lesson"]
            for item in session.items
            if getattr(item, "originalname", "") == "test_lesson_runs_twice_in_a_fresh_kernel"
        },
        key=lambda path: path.name,
        reverse=True,  # later chapters run longer
    )
    if not wanted:
        return
    pool = ProcessPoolExecutor(
        max_workers=LESSON_JOBS,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_as_lesson_learner,
    )
    session.config.stash[LESSON_RUNS] = {path: pool.submit(run_twice, path) for path in wanted}
    session.config.add_cleanup(lambda: pool.shutdown(wait=True, cancel_futures=True))


@pytest.fixture(scope="module")
def lesson_runs(
    request: pytest.FixtureRequest,
) -> dict[Path, list[tuple[nbformat.NotebookNode, float]]]:
    started = request.config.stash[LESSON_RUNS]
    runs = {path: future.result() for path, future in started.items()}
    times = ", ".join(f"{p.stem} {r[0][1]:.0f}+{r[1][1]:.0f} s" for p, r in sorted(runs.items()))
    request.config.stash[LESSON_TIMES] = f"lessons, {LESSON_JOBS} at a time: {times}"
    return runs


def failures(notebook: nbformat.NotebookNode) -> list[str]:
    """Error outputs, and anything a cell wrote to stderr."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output['ename']}: {output['evalue'][:300]}")
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {index} wrote to stderr: {output['text'][:300]}")
    return found


def pictures_missing(notebook: nbformat.NotebookNode) -> list[str]:
    """Cells that draw (a diagram, or stopping a live view) but left no image in the notebook."""
    return [
        cell.source.splitlines()[-1]
        for cell in notebook.cells
        if cell.cell_type == "code"
        and DRAWS.search(cell.source)
        and not any("image/png" in (o.get("data") or {}) for o in cell.get("outputs", []))
    ]


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.cluster
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_twice_in_a_fresh_kernel(
    lesson: Path, lesson_runs: dict[Path, list[tuple[nbformat.NotebookNode, float]]]
) -> None:
    for attempt, (notebook, _seconds) in enumerate(lesson_runs[lesson], 1):
        assert not failures(notebook), f"run {attempt}: {failures(notebook)}"
        assert not pictures_missing(notebook), f"no image/png from: {pictures_missing(notebook)}"


def calls_without_cli(source: str) -> list[str]:
    """Lines that call a helper with no "CLI:" comment on them or just above them."""
    lines = source.splitlines()
    missing = []
    for number, line in enumerate(lines):
        if not HELPER_CALL.search(line.split("#", 1)[0]):
            continue
        above = number - 1
        documented = "CLI:" in line
        while not documented and above >= 0 and lines[above].strip().startswith("#"):
            documented = "CLI:" in lines[above]
            above -= 1
        if not documented:
            missing.append(line.strip())
    return missing


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_follows_the_chapter_standard(lesson: Path) -> None:
    notebook = nbformat.read(lesson, as_version=4)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    assert markdown.count("\n# ") + markdown.startswith("# ") == 1, "one H1 per lesson"
    assert "helpers.setup(" in code[0] and "helpers.doctor(" in code[0], (
        "the first code cell sets up and checks the machine before anything needs it"
    )
    predictions = [
        match.group(1)
        for cell in code
        for match in re.finditer(r"^(\w+) = helpers\.predict\(", cell, re.MULTILINE)
    ]
    assert len(predictions) >= 2, "at least two predict-then-observe moments"
    for name in predictions:
        where = next(i for i, cell in enumerate(code) if f"{name} = helpers.predict(" in cell)
        assert any(f"{name}.observe(" in cell for cell in code[where + 1 :]), (
            f"the prediction {name!r} is observed in a later cell"
        )
    assert "## Summary" in markdown
    assert "cleanup" in "\n".join(code[-3:]) or "delete_namespace" in "\n".join(code[-3:])
    undocumented = [line for cell in code for line in calls_without_cli(cell)]
    assert not undocumented, f"helper calls without their CLI command: {undocumented}"
    long_cells = [c for c in code if len(c.splitlines()) > 12]
    assert not long_cells, f"keep code cells short: {long_cells[0][:80]}"
    assert "article" not in markdown.lower(), "the lesson stands on its own"
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        "commit without outputs"
    )


def test_the_cli_rule_catches_an_undocumented_call() -> None:
    assert calls_without_cli("# CLI: docker ps\ndocker.ps()") == []
    assert calls_without_cli("x = 1\ndocker.ps()") == ["docker.ps()"]
    assert calls_without_cli("# CLI: a\n# more\nk8s.pods(ns)\nk8s.logs('web')") == [
        "k8s.logs('web')"
    ]
