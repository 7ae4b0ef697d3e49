"""Command line: ``python -m helpers doctor | images | cleanup | classroom | release | grade |
bench`` (the Makefile calls these)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import _course_images, _grading
from ._cluster import REPO_ROOT, load_image
from ._doctor import doctor
from ._errors import CourseError


def _cleanup(everyone: bool) -> int:
    from ._docker.containers import cleanup
    from ._identity import chapter, learner_name
    from ._k8s.objects import delete_cluster_objects, delete_namespace, list_objects

    chapter("00-cleanup")  # any chapter: the cleanup covers all of them
    removed = cleanup(all_chapters=True, everyone=everyone)
    print(f"✓ removed {len(removed)} course container(s) and image(s)")
    selector = "course.learner" if everyone else f"course.learner={learner_name()}"
    try:
        namespaces = list_objects("namespaces", selector=selector)
    except CourseError as error:
        print(f"! namespaces not removed: {error.message}")
        return 0
    for ns in namespaces:
        delete_namespace(ns.name, wait_until_gone=False)
    print(f"✓ deleting {len(namespaces)} course namespace(s)")
    volumes = delete_cluster_objects(None if everyone else learner_name())
    print(f"✓ deleting {len(volumes)} course volume(s)")
    return 0


def _classroom(roster: Path | None, out: Path, down: bool) -> int:
    from . import _classroom as classroom

    if down:
        removed = classroom.down(out)
        print(f"✓ classroom removed: {len(removed)} namespace(s) and roles; {out} deleted")
        return 0
    if roster is None:
        print("✗ Give the roster: make classroom ROSTER=students.csv", file=sys.stderr)
        return 2
    chapters = sorted(p.stem for p in (REPO_ROOT / "course").glob("[0-9][0-9]-*.ipynb"))
    written = classroom.up(classroom.read_roster(roster), chapters, out)
    print(f"✓ {len(written)} student(s), {len(chapters)} namespace(s) each; kubeconfigs in {out}/")
    print("  a student works with: export KUBECONFIG=<their kubeconfig> COURSE_LEARNER=<their id>")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    doctor_cmd = commands.add_parser("doctor", help="check that everything is ready")
    doctor_cmd.add_argument("--no-cluster", action="store_true", help="skip the cluster checks")
    images_cmd = commands.add_parser("images", help="build the course images (and load them)")
    images_cmd.add_argument("--force", action="store_true", help="rebuild even if present")
    images_cmd.add_argument("--load", action="store_true", help="also load them into the cluster")
    cleanup_cmd = commands.add_parser(
        "cleanup", help="remove your course containers, images and namespaces (all chapters)"
    )
    cleanup_cmd.add_argument(
        "--everyone", action="store_true", help="every learner's, not only yours (instructors)"
    )
    classroom_cmd = commands.add_parser(
        "classroom",
        help="per-student namespaces, quotas and kubeconfigs from a roster (--down removes them)",
    )
    classroom_cmd.add_argument("roster", nargs="?", type=Path, help="a CSV with an id column")
    classroom_cmd.add_argument("--down", action="store_true", help="remove the whole classroom")
    classroom_cmd.add_argument(
        "--out", type=Path, default=REPO_ROOT / "classroom", help="where the kubeconfigs go"
    )
    commands.add_parser("release", help="generate exercises/ from solutions/ (nbgrader)")
    bench_cmd = commands.add_parser(
        "bench", help="print benchmark numbers of the cluster and the helpers"
    )
    bench_cmd.add_argument(
        "--grading-only", action="store_true", help="only the class-grading benchmark"
    )
    bench_cmd.add_argument(
        "--students", type=int, default=30, help="students per chapter in the grading benchmark"
    )
    bench_cmd.add_argument(
        "--jobs", type=int, default=None, help="submissions at a time in the class run"
    )
    grade_cmd = commands.add_parser(
        "grade", help="grade the class: autograde, feedback, grades.csv (exit 3: some need you)"
    )
    from ._grading import cli as grading_cli

    grading_cli.add_arguments(grade_cmd)
    args = parser.parse_args(argv)
    try:
        if args.command == "doctor":
            report = doctor(cluster=not args.no_cluster)
            print(report)
            for finding in report.failed():
                print(f"\n✗ {finding.check}: {finding.detail}\n  Fix: {finding.fix}")
            return 0 if report.ok else 1
        if args.command == "images":
            tags = _course_images.build_course_images(force=args.force)
            if args.load:
                for tag in tags:
                    load_image(tag)
            return 0
        if args.command == "cleanup":
            return _cleanup(args.everyone)
        if args.command == "bench":
            from ._bench import grading, main

            if args.grading_only:
                grading(students=args.students, jobs=args.jobs)
            else:
                main(students=args.students)
            return 0
        if args.command == "classroom":
            return _classroom(args.roster, args.out, args.down)
        if args.command == "release":
            _grading.release()
            return 0
        if args.command == "grade":
            return grading_cli.main(args)
    except CourseError as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
