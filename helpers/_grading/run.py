"""Grading a whole class (``make grade``): every submission ends graded or not gradable with its
reason, a bad one never stops the others, only what is due is graded again (new, changed, or its
grade, ``autograded/`` or ``feedback/`` not where the last run put them: ``regrade.due``), N at a
time, and the class's gradebook, folders and grades.csv are written from this one thread; what the
run reports is read back from them at the end."""

from __future__ import annotations

import concurrent.futures as futures
import shutil
import signal
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .._errors import CourseError
from .._output import Table
from . import course, gradebook, intake, regrade
from .cleanup import learner_of, wait_gone
from .course import REPO_ROOT, Source
from .outcome import ERROR, GRADED, INTERRUPTED, Outcome
from .progress import Progress
from .runner import GRADING_ACCOUNT, YOURS, Job, run_submission, warm_up
from .safeguards import (
    credentials_for,
    one_run_at_a_time,
    overlap,
    sandbox_wanted,
    say_what_is_missing,
)
from .settings import default_jobs, settings

NEEDS_INSTRUCTOR = 3  # the exit code when some submission could not be graded, or is flagged


@dataclass
class ClassRun:
    """What a run found: every selected submission (graded now or earlier), and where the
    grades went."""

    outcomes: list[Outcome]
    graded_now: list[str] = field(default_factory=list)  # keys graded in this run
    due: dict[str, str] = field(default_factory=dict)  # key -> why it was graded in this run
    csv: Path | None = None
    jobs: int = 1
    interrupted: bool = False
    sandboxed: bool = False  # the notebooks ran in the sandbox (sandbox.py)

    def __getitem__(self, key: str) -> Outcome:
        return next(o for o in self.outcomes if o.key == key)

    @property
    def table(self) -> Table:
        rows = [
            [
                o.student,
                o.assignment,
                o.status,
                "" if o.score is None else f"{o.score:g}",
                "" if o.max_score is None else f"{o.max_score:g}",
                o.reason,
                o.flags,
            ]
            for o in sorted(self.outcomes, key=lambda o: (o.assignment, o.student))
        ]
        return Table(["student", "assignment", "status", "score", "max", "reason", "flags"], rows)

    def needs_instructor(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.needs_instructor()]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return NEEDS_INSTRUCTOR if self.needs_instructor() else 0

    def summary(self) -> str:
        graded = sum(o.graded for o in self.outcomes)
        earlier = len(self.outcomes) - len(self.graded_now)
        lines = [
            f"{len(self.outcomes)} submission(s): {graded} graded, "
            f"{len(self.needs_instructor())} need you; {len(self.graded_now)} graded in this run, "
            f"{earlier} unchanged since an earlier run."
        ]
        lines.extend(f"  {line}" for line in self.why())
        if self.csv:
            lines.append(f"Grades: {self.csv}; feedback in {self.csv.parent / 'feedback'}")
        now = set(self.graded_now)
        used = Counter(o.credentials for o in self.outcomes if o.key in now and o.credentials)
        if used:
            lines.append(
                "Cluster credentials: "
                + ", ".join(
                    f"{count} {kind}{'s' if count > 1 else ''}" for kind, count in used.items()
                )
                + (" (made for this run and removed)" if used.get(GRADING_ACCOUNT) else "")
            )
        if used.get(YOURS):
            lines.append(
                f" ! {used[YOURS]} notebook(s) graded with your kubeconfig (CLASSROOM=0): their "
                "code could reach everything you can on the cluster."
            )
        for outcome in self.needs_instructor():
            if outcome.graded:  # graded, and flagged
                lines.append(f"  ⚑ {outcome.key}: graded, flagged: {outcome.flags}")
            else:
                lines.append(f"  ✗ {outcome.key}: {outcome.status}: {outcome.reason}")
        return "\n".join(lines)

    def why(self) -> list[str]:
        """A line per reason the submissions graded in this run were due, with their count."""
        return [f"{n} due: {reason}" for reason, n in regrade.tally(self.graded_now, self.due)]

    def __str__(self) -> str:
        return f"{self.table}\n\n{self.summary()}"


def grade(
    root: Path = REPO_ROOT,
    submissions: Path | None = None,
    *,
    force: bool = False,
    students: Iterable[str] | None = None,
    assignments: Iterable[str] | None = None,
    jobs: int | None = None,
    keep: bool = False,
    timeout: float | None = None,
    submission_timeout: float | None = None,
    cell_output_limit: int | None = None,
    notebook_output_limit: int | None = None,
    containment: str | None = None,
    classroom: Callable[[str], Path | None] | None = None,
    yours: bool = False,
    kernel_name: str | None = None,
    sandbox: bool | None = None,
    out: TextIO | None = None,
) -> ClassRun:
    """Grade the class in ``root/submitted`` (``submissions``: a collected folder copied in
    first): only what is due (``regrade.due``), unless ``force`` or ``students`` names them; write
    the gradebook, ``autograded/``, ``feedback/``, ``grading/`` (state and logs) and grades.csv.

    ``timeout`` is per cell (default: nbgrader_config.py's Execute.timeout); the other limits
    default to ``c.ClassGrading.*`` there. ``keep`` leaves the students' namespaces and
    containers for inspection.

    Cluster credentials: each notebook is graded with its student's own. ``classroom(student)``
    names a student's classroom kubeconfig (``make classroom``), if there is one; a student
    without one gets an account made for the grading, confined as a classroom student's, and
    removed after it (``_classroom.grading_account``). ``yours`` grades every notebook with
    the instructor's kubeconfig instead (``CLASSROOM=0``). ``kernel_name`` picks another kernel
    spec for every
    submission. ``sandbox`` (default: ``c.ClassGrading.sandbox``) runs each notebook in a
    bubblewrap sandbox where bwrap works (helpers/_grading/sandbox.py)."""
    with one_run_at_a_time(root), _signals_stop_the_run():
        return _grade(
            root,
            submissions,
            force=force,
            students=students,
            assignments=assignments,
            jobs=jobs,
            keep=keep,
            timeout=timeout,
            submission_timeout=submission_timeout,
            cell_output_limit=cell_output_limit,
            notebook_output_limit=notebook_output_limit,
            containment=containment,
            classroom=classroom,
            yours=yours,
            kernel_name=kernel_name,
            sandbox=sandbox,
            out=out or sys.stdout,
        )


@contextmanager
def _signals_stop_the_run() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal, a CI timeout) stop the run as Ctrl+C does: the
    running submissions are killed with everything they started, the finished ones recorded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _grade(
    root: Path,
    submissions: Path | None,
    *,
    force: bool,
    students: Iterable[str] | None,
    assignments: Iterable[str] | None,
    jobs: int | None,
    keep: bool,
    timeout: float | None,
    submission_timeout: float | None,
    cell_output_limit: int | None,
    notebook_output_limit: int | None,
    containment: str | None,
    classroom: Callable[[str], Path | None] | None,
    yours: bool,
    kernel_name: str | None,
    sandbox: bool | None,
    out: TextIO,
) -> ClassRun:
    students = sorted(set(students or []))
    assignments = sorted(set(assignments or []))
    options = settings(course.config(root))
    jobs = jobs or options.jobs or default_jobs()
    submission_timeout = submission_timeout or options.submission_timeout
    sandboxed = sandbox_wanted(options.sandbox if sandbox is None else sandbox, kernel_name, out)
    isolated = sandboxed and say_what_is_missing(sandboxed, options, out)
    submitted = root / "submitted"
    if submissions is not None and submissions.resolve() != submitted.resolve():
        intake.copy_in(submissions, submitted)
    found = intake.find(submitted, students, assignments)
    known = {name: course.source(root, name) for name in course.assignments(root)}
    state = gradebook.State(root)
    run = ClassRun(
        [],
        jobs=jobs,
        due=regrade.due(root, found, known, state, force or bool(students)),
        sandboxed=sandboxed,
    )
    due = [s for s in found if s.key in run.due]
    unchanged = [s for s in found if s.key not in run.due]
    if not due:
        print(
            " ✓ nothing new to grade: every submission is unchanged since it was graded", file=out
        )
        run.outcomes = regrade.read_back(root, found, run.due, run.graded_now, state, run.outcomes)
        run.csv = gradebook.export_csv(root)
        return run

    warm_up()  # the fork server imports nbgrader (seconds) while the sources are released
    names = sorted({s.assignment for s in due if s.assignment in known})
    why = ", ".join(f"{n} {reason}" for reason, n in regrade.tally(run.due, run.due))
    print(
        f" • Grading {len(due)} submission(s) of {', '.join(names) or 'no known assignment'}, "
        f"{jobs} at a time ({len(unchanged)} unchanged; due: {why})",
        file=out,
        flush=True,
    )
    with (
        course.scratch(root, names) as scratch,
        tempfile.TemporaryDirectory(prefix="course-grading-") as work,
    ):
        regraded: dict[str, set[str]] = {}
        for submission in due:
            regraded.setdefault(submission.assignment, set()).add(submission.student)
        gradebook.sync_definitions(root, scratch, regraded)
        progress = Progress(len(due), jobs, out)
        pending: list[tuple[intake.Submission, Job]] = []
        for number, submission in enumerate(due):
            source = scratch.sources.get(submission.assignment)
            try:
                problem = intake.check(submission, source, list(known.values()))
            except Exception as error:  # a bug of ours must not stop the class
                problem = Outcome(
                    submission.student,
                    submission.assignment,
                    ERROR,
                    f"the grader's checks failed: {type(error).__name__}: {error}",
                )
            if problem is not None:
                _record(root, run, state, submission, problem, progress, 0, source=source)
                continue
            assert source is not None
            pending.append(
                (
                    submission,
                    Job(
                        submission=submission,
                        source=source,
                        template=scratch.gradebook,
                        work=Path(work) / f"{number:04d}",
                        timeout=timeout,
                        submission_timeout=submission_timeout,
                        cell_output_limit=cell_output_limit or options.cell_output_limit,
                        notebook_output_limit=notebook_output_limit
                        or options.notebook_output_limit,
                        keep=keep,
                        containment=containment,
                        memory_limit=options.memory_limit,
                        pids_limit=options.pids_limit,
                        **credentials_for(submission.student, classroom, yours),
                        kernel_name=kernel_name,
                        sandbox=sandboxed,
                        network=isolated,
                    ),
                )
            )
        run.interrupted = _schedule(root, run, state, pending, jobs, progress)
        progress.close()
        deleted = [ns for o in run.outcomes for ns in o.namespaces]
        if deleted:
            try:
                left = wait_gone(deleted, options.cleanup_timeout)
            except CourseError as error:
                left = [f"({error.message})"]
            if left:
                print(
                    f" ! still terminating after {options.cleanup_timeout:g} s: {', '.join(left)}",
                    file=out,
                )
    run.outcomes = regrade.read_back(root, found, run.due, run.graded_now, state, run.outcomes)
    run.csv = gradebook.export_csv(root)
    return run


def _schedule(
    root: Path,
    run: ClassRun,
    state: gradebook.State,
    pending: list[tuple[intake.Submission, Job]],
    jobs: int,
    progress: Progress,
) -> bool:
    """Run the jobs, ``jobs`` at a time, never two of one learner at once (they share names on
    the engine and the cluster), nor two whose names overlap (``_overlap``). Returns whether the
    run was interrupted."""
    stop = threading.Event()
    running: dict[futures.Future[Outcome], tuple[intake.Submission, Job]] = {}
    interrupted = False
    with futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade") as pool:
        while pending or running:
            try:
                busy = {learner_of(job.student) for _, job in running.values()}
                while len(running) < jobs and not stop.is_set():
                    ready = next(
                        (
                            i
                            for i, (_, j) in enumerate(pending)
                            if not any(overlap(learner_of(j.student), b) for b in busy)
                        ),
                        None,
                    )
                    if ready is None:
                        break
                    submission, job = pending.pop(ready)
                    busy.add(learner_of(job.student))
                    running[pool.submit(run_submission, job, stop)] = (submission, job)
                progress.refresh(len(running))
                done, _ = futures.wait(running, timeout=0.5, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    submission, job = running.pop(future)
                    try:
                        outcome = future.result()
                    except Exception as error:  # a bug of ours: report it, go on
                        outcome = Outcome(
                            job.student,
                            job.assignment,
                            ERROR,
                            f"the grader failed: {type(error).__name__}: {error}",
                        )
                    _record(root, run, state, submission, outcome, progress, len(running), job)
            except KeyboardInterrupt:
                if stop.is_set():
                    raise
                stop.set()
                interrupted = True
                pending.clear()
                progress.note(
                    "Stopping: killing the running submissions (Ctrl+C again to quit now)"
                )
    return interrupted


def _record(
    root: Path,
    run: ClassRun,
    state: gradebook.State,
    submission: intake.Submission,
    outcome: Outcome,
    progress: Progress,
    running: int,
    job: Job | None = None,
    source: Source | None = None,
) -> None:
    """Write one submission's end into the class's records (this thread only). A failure to
    write is that submission's error, not the run's end."""
    if outcome.status == INTERRUPTED:
        return
    source = job.source if job is not None else source
    stamp = None
    try:
        stamp = _write(root, outcome, source, job)
    except Exception as error:
        outcome = Outcome(
            outcome.student,
            outcome.assignment,
            ERROR,
            f"could not record the result: {type(error).__name__}: {error}",
            seconds=outcome.seconds,
            log=outcome.log,
        )
        gradebook.forget(root, outcome.student, outcome.assignment)
    state.put(outcome, submission.digest, source.digest if source else "", stamp)
    state.save()
    if job is not None and job.work.exists():
        shutil.rmtree(job.work, ignore_errors=True)
    run.outcomes.append(outcome)
    run.graded_now.append(outcome.key)
    progress.finished(outcome, running)


def _write(root: Path, outcome: Outcome, source: Source | None, job: Job | None) -> str | None:
    """Returns the stamp of the grade written into the gradebook (None: not graded)."""
    s, a = outcome.student, outcome.assignment
    stamp = None
    if outcome.status == GRADED:
        stamp = gradebook.merge(root, outcome)
        assert job is not None
        gradebook.replace_folder(job.work / "autograded" / s / a, root / "autograded" / s / a)
        gradebook.replace_folder(job.work / "feedback" / s / a, root / "feedback" / s / a)
    else:
        gradebook.forget(root, s, a)
        stale = root / "autograded" / s / a
        if stale.exists():
            shutil.rmtree(stale)
        notebooks = sorted(source.notebooks) if source else [a]
        gradebook.ungradable_feedback(root, outcome, notebooks)
    log = gradebook.log_path(root, s, a)
    log.parent.mkdir(parents=True, exist_ok=True)
    if outcome.log and Path(outcome.log).exists():
        shutil.copy(outcome.log, log)
    else:
        log.write_text(f"{outcome.status}: {outcome.reason}\n(found before running any cell)\n")
    outcome.log = str(log)
    return stamp
