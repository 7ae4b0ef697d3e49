"""Instructor tooling around nbgrader: release the exercises, autograde, feedback, CSV export.

Used by ``make exercises`` and ``make grade`` (through ``python -m helpers``) and by the tests,
which run the same functions on a copy of the course in a temporary folder.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import CourseError
from ._output import Table, step

REPO_ROOT = Path(__file__).resolve().parent.parent


def _config(root: Path, **execute: Any) -> Any:
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO_ROOT)).load_config()
    merged = Config(config)
    merged.CourseDirectory.root = str(root)
    merged.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    for key, value in execute.items():
        setattr(merged.Execute, key, value)
    return merged


def _api(root: Path, **execute: Any) -> Any:
    # nbgrader runs `alembic` from PATH; make sure this environment's bin/ is on it.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    from nbgrader.apps import NbGraderAPI

    return NbGraderAPI(config=_config(root, **execute))


def assignments(root: Path = REPO_ROOT) -> list[str]:
    """The assignment names in ``solutions/``."""
    return sorted(p.name for p in (root / "solutions").iterdir() if p.is_dir())


def _raise_on_failure(result: dict[str, Any], what: str) -> None:
    if not result.get("success"):
        raise CourseError(
            f"nbgrader could not {what}.",
            output=result.get("log", "") + "\n" + str(result.get("error", "")),
            hint="Read nbgrader's log above.",
        )


def release(root: Path = REPO_ROOT, names: Sequence[str] | None = None) -> list[Path]:
    """Generate ``exercises/<assignment>`` from ``solutions/<assignment>`` (nbgrader
    generate_assignment). Returns the released folders."""
    api = _api(root)
    released = []
    for name in names or assignments(root):
        with step(f"Generating exercises/{name} from solutions/{name}"):
            _raise_on_failure(api.generate_assignment(name, force=True), f"generate {name}")
        released.append(root / "exercises" / name)
    return released


def autograde(root: Path, assignment: str, student: str, **execute: Any) -> dict[str, Any]:
    """Autograde one submission in ``root/submitted/<student>/<assignment>``; returns its scores."""
    api = _api(root, **execute)
    _raise_on_failure(
        api.autograde(assignment, student, force=True, create=True),
        f"autograde {student}/{assignment}",
    )
    return scores(root, assignment, student)


def scores(root: Path, assignment: str, student: str) -> dict[str, Any]:
    """Total and per-test points of one graded submission, from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(assignment, student)
        per_test = {
            grade.name: grade.score
            for notebook in submission.notebooks
            for grade in notebook.grades
        }
        return {"score": submission.score, "max_score": submission.max_score, "tests": per_test}


def feedback(root: Path, assignment: str, student: str) -> Path:
    """Write the HTML feedback of one submission; returns the folder it is in."""
    _raise_on_failure(
        _api(root).generate_feedback(assignment, student, force=True),
        f"make feedback for {student}/{assignment}",
    )
    return root / "feedback" / student / assignment


def export_csv(root: Path, path: Path | None = None) -> Path:
    """Export every grade to a CSV (nbgrader's CSV exporter)."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    target = path or root / "grades.csv"
    plugin = CsvExportPlugin(config=_config(root), to=str(target))
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        plugin.export(gradebook)
    return target


def grade(root: Path, submissions: Path | None = None) -> Table:
    """Autograde every submission, write feedback, and export grades.csv."""
    if submissions is not None and submissions.resolve() != (root / "submitted").resolve():
        shutil.copytree(submissions, root / "submitted", dirs_exist_ok=True)
    release(root)
    rows = []
    for student_dir in sorted((root / "submitted").iterdir()):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
            with step(f"Autograding {student_dir.name}/{assignment_dir.name}"):
                result = autograde(root, assignment_dir.name, student_dir.name)
                feedback(root, assignment_dir.name, student_dir.name)
            rows.append(
                [student_dir.name, assignment_dir.name, result["score"], result["max_score"]]
            )
    csv_path = export_csv(root)
    print(f" ✓ grades exported to {csv_path}; feedback in {root / 'feedback'}")
    return Table(["student", "assignment", "score", "max"], rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
