"""nbgrader plumbing: the course's config, the assignments, release, and the one-submission
operations (autograde, scores, feedback) exactly as nbgrader does them.

``release`` writes ``exercises/`` and nothing else: the cell definitions it computes go to a
throwaway gradebook, so releasing never depends on (or changes) the grades in ``gradebook.db``.
A class run (``run.grade``) grades against the source in a scratch copy (``Scratch``), never
against the committed ``exercises/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from .._errors import CourseError
from .._output import step

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG_DIR = REPO_ROOT  # nbgrader_config.py lives at the top of the repository


def config(root: Path, *, db: Path | None = None, **execute: Any) -> Any:
    """The course's nbgrader config with ``root`` as the course folder and ``db`` (default
    ``root/gradebook.db``) as the gradebook; keyword arguments override ``Execute`` settings."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    loaded = PyFileConfigLoader("nbgrader_config.py", path=str(CONFIG_DIR)).load_config()
    merged = Config(loaded)
    merged.CourseDirectory.root = str(root)
    merged.CourseDirectory.db_url = f"sqlite:///{db or root / 'gradebook.db'}"
    for key, value in execute.items():
        setattr(merged.Execute, key, value)
    return merged


def ensure_alembic_on_path() -> None:
    # nbgrader runs `alembic` from PATH; make sure this environment's bin/ is on it.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _cache() -> Path:
    from .._cluster import cache_dir

    return cache_dir()


def empty_gradebook(path: Path) -> None:
    """Put an empty gradebook at ``path`` unless one is there. nbgrader makes a new one by
    running alembic in a subprocess (about 5 s); a copy of one made before takes no time."""
    if path.exists():
        return
    from nbgrader import __version__

    cached = _cache() / f"empty-gradebook-nbgrader-{__version__}.db"
    if not cached.exists():
        ensure_alembic_on_path()
        from nbgrader.api import Gradebook

        cached.parent.mkdir(parents=True, exist_ok=True)
        fresh = cached.with_name(f"{cached.stem}.{os.getpid()}.part")
        fresh.unlink(missing_ok=True)
        with Gradebook(f"sqlite:///{fresh}"):
            pass
        os.replace(fresh, cached)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(cached, path)


def api(root: Path, *, db: Path | None = None, extra: Any = None, **execute: Any) -> Any:
    ensure_alembic_on_path()
    from nbgrader.apps import NbGraderAPI

    empty_gradebook(db or root / "gradebook.db")
    merged = config(root, db=db, **execute)
    if extra is not None:
        merged.merge(extra)
    return NbGraderAPI(config=merged)


def ignored(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch(name, pattern) for pattern in patterns)


def ignore_patterns() -> list[str]:
    return list(config(REPO_ROOT).CourseDirectory.get("ignore", [])) or [
        ".ipynb_checkpoints",
        "*.pyc",
        "__pycache__",
    ]


def assignments(root: Path = REPO_ROOT) -> list[str]:
    """The assignment names in ``solutions/``."""
    return sorted(p.name for p in (root / "solutions").iterdir() if p.is_dir())


def raise_on_failure(result: dict[str, Any], what: str) -> None:
    if not result.get("success"):
        raise CourseError(
            f"nbgrader could not {what}.",
            output=result.get("log", "") + "\n" + str(result.get("error", "")),
            hint="Read nbgrader's log above.",
        )


def release(root: Path = REPO_ROOT, names: Sequence[str] | None = None) -> list[Path]:
    """Generate ``exercises/<assignment>`` from ``solutions/<assignment>`` (nbgrader
    generate_assignment). Returns the released folders. Only ``exercises/`` changes."""
    with tempfile.TemporaryDirectory(prefix="course-release-") as scratch:
        generator = api(root, db=Path(scratch) / "gradebook.db")
        released = []
        for name in names or assignments(root):
            with step(f"Generating exercises/{name} from solutions/{name}"):
                raise_on_failure(
                    generator.generate_assignment(name, force=True), f"generate {name}"
                )
            released.append(root / "exercises" / name)
    return released


def define(root: Path, names: Sequence[str], gradebook: Path) -> None:
    """Write the cell definitions of ``names`` (from ``root/solutions``) into ``gradebook``,
    as generate_assignment does, releasing into a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="course-define-") as scratch:
        extra = _scratch_release_config(Path(scratch))
        generator = api(root, db=gradebook, extra=extra)
        for name in names:
            raise_on_failure(generator.generate_assignment(name, force=True), f"define {name}")


def _scratch_release_config(folder: Path) -> Any:
    from traitlets.config import Config

    extra = Config()
    extra.CourseDirectory.release_directory = str(folder / "release")
    return extra


def defined(gradebook: Path, assignment: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    if not gradebook.exists():
        return False
    with Gradebook(f"sqlite:///{gradebook}") as book:
        try:
            book.find_assignment(assignment)
        except MissingEntry:
            return False
    return True


def autograde(root: Path, assignment: str, student: str, **execute: Any) -> dict[str, Any]:
    """Autograde one submission in ``root/submitted/<student>/<assignment>`` with nbgrader itself,
    in this process; returns its scores. (A class is graded with ``run.grade``.)"""
    gradebook = root / "gradebook.db"
    if not defined(gradebook, assignment):
        define(root, [assignment], gradebook)
    raise_on_failure(
        api(root, **execute).autograde(assignment, student, force=True, create=True),
        f"autograde {student}/{assignment}",
    )
    return scores(root, assignment, student)


def scores(root: Path, assignment: str, student: str, db: Path | None = None) -> dict[str, Any]:
    """Total and per-test points of one graded submission, from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db or root / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(assignment, student)
        per_test = {
            grade.name: grade.score
            for notebook in submission.notebooks
            for grade in notebook.grades
        }
        return {"score": submission.score, "max_score": submission.max_score, "tests": per_test}


def feedback(root: Path, assignment: str, student: str) -> Path:
    """Write the HTML feedback of one submission; returns the folder it is in."""
    raise_on_failure(
        api(root).generate_feedback(assignment, student, force=True),
        f"make feedback for {student}/{assignment}",
    )
    return root / "feedback" / student / assignment


# --- the source of a class run, in a scratch copy ---------------------------------------------


@dataclass(frozen=True)
class Cell:
    """What nbgrader knows of one cell of the source: grade_id and flags."""

    grade_id: str
    grade: bool
    solution: bool
    locked: bool
    points: float
    task: bool = False

    @property
    def role(self) -> str:
        if self.grade and not self.solution:
            return "test cell"
        if self.solution:
            return "answer cell"
        return "locked cell"


@dataclass
class Source:
    """One assignment's source, copied to a scratch course root and released there."""

    name: str
    folder: Path  # scratch/solutions/<name>
    digest: str  # of solutions/<name>: a changed source regrades every submission of it
    notebooks: dict[str, dict[str, Cell]] = field(default_factory=dict)  # notebook -> cells

    def all_ids(self) -> set[str]:
        return {grade_id for cells in self.notebooks.values() for grade_id in cells}


def digest_folder(folder: Path, patterns: Sequence[str]) -> str:
    """sha256 of a folder's files (names and bytes), skipping ignored and hidden files."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") or ignored(part, patterns) for part in relative.parts):
            continue
        if path.is_file() and not path.is_symlink():  # a link is never copied to grading
            digest.update(str(relative).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cells_of(notebook: Any) -> dict[str, Cell]:
    found = {}
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if not meta or "grade_id" not in meta:
            continue
        found[meta["grade_id"]] = Cell(
            grade_id=meta["grade_id"],
            grade=bool(meta.get("grade")),
            solution=bool(meta.get("solution")),
            locked=bool(meta.get("locked")),
            points=float(meta.get("points", 0) or 0),
            task=bool(meta.get("task")),
        )
    return found


def outline(folder: Path) -> dict[str, dict[str, Cell]]:
    """The nbgrader cells of each notebook in an assignment's source folder."""
    import nbformat

    return {
        path.stem: cells_of(nbformat.read(path, as_version=4))  # type: ignore[no-untyped-call]
        for path in sorted(folder.glob("*.ipynb"))
    }


def source(root: Path, name: str) -> Source:
    """An assignment's source as it is in ``root/solutions`` (no release needed)."""
    folder = root / "solutions" / name
    return Source(name, folder, digest_folder(folder, ignore_patterns()), outline(folder))


class Scratch:
    """A scratch course root with copies of the sources being graded, released there, and a
    template gradebook that holds only their definitions (each submission's worker starts from a
    copy of it, so no worker sees another student's grades)."""

    def __init__(self, root: Path, names: Sequence[str], folder: Path) -> None:
        self.folder = folder
        self.gradebook = folder / "gradebook.db"
        self.sources: dict[str, Source] = {}
        patterns = ignore_patterns()
        for name in names:
            original = root / "solutions" / name
            copy = folder / "solutions" / name
            shutil.copytree(original, copy, ignore=shutil.ignore_patterns(".*", *patterns))
            self.sources[name] = Source(
                name, copy, digest_folder(original, patterns), outline(copy)
            )
        generator = api(folder, db=self.gradebook, extra=_scratch_release_config(folder))
        for name in self.sources:
            raise_on_failure(generator.generate_assignment(name, force=True), f"generate {name}")


@contextmanager
def scratch(root: Path, names: Sequence[str]) -> Iterator[Scratch]:
    with tempfile.TemporaryDirectory(prefix="course-grading-source-") as folder:
        yield Scratch(root, names, Path(folder))
