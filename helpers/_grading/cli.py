"""``python -m helpers grade``: its options and how it ends (the exit code says whether some
submission needs the instructor: 0 every one graded, 3 some could not be graded, the table says
which and why; 1 the run could not start)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .course import REPO_ROOT
from .run import grade


def _names(values: list[str] | None) -> list[str]:
    return [name for value in values or [] for name in value.replace(",", " ").split()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "submissions", nargs="?", help="a collected folder of <student>/<assignment>/"
    )
    parser.add_argument(
        "--force", action="store_true", help="grade every submission again, changed or not"
    )
    parser.add_argument(
        "--student",
        action="append",
        metavar="ID",
        help="only these students (graded again even if unchanged); repeat or comma-separate",
    )
    parser.add_argument(
        "--assignment", action="append", metavar="NAME", help="only these assignments"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="submissions at a time (default: what the machine takes)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the students' namespaces and containers after grading, for inspection",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run the notebooks without the bubblewrap sandbox (they see the course folder)",
    )
    parser.add_argument(
        "--no-classroom",
        action="store_true",
        help="grade every notebook with your kubeconfig (not the students' own accounts): "
        "their code can then reach everything you can",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per cell (default: nbgrader_config.py)"
    )
    parser.add_argument(
        "--root", type=Path, default=REPO_ROOT, help="the course folder (default: this repository)"
    )


def main(args: argparse.Namespace) -> int:
    accounts = args.root / "classroom"

    def classroom(student: str) -> Path | None:
        # make classroom gave this student a kubeconfig of their own: their notebook uses it.
        kubeconfig = accounts / student / "kubeconfig"
        return kubeconfig if kubeconfig.is_file() else None

    try:
        run = grade(
            args.root,
            Path(args.submissions) if args.submissions else None,
            force=args.force,
            students=_names(args.student),
            assignments=_names(args.assignment),
            jobs=args.jobs or None,
            keep=args.keep,
            timeout=args.timeout,
            sandbox=False if args.no_sandbox else None,
            classroom=classroom,
            yours=args.no_classroom,
        )
    except KeyboardInterrupt:
        print("\n✗ stopped")
        return 130
    print()
    print(run)
    return run.exit_code
