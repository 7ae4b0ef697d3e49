"""One submission, start to end: ``run_submission(job) -> Outcome``.

It gives the submission a private course root (its own copy of the submission, of the source and
of a gradebook holding only the assignment's definitions), starts a worker in a fresh containment
(``containment.py``), waits at most the submission's time limit, kills whatever is still running,
removes the student's namespaces and containers (unless asked to keep them) and reads the
worker's result. Nothing here writes the class's gradebook or folders: the run does, from one
thread.

How the kernel is launched is the worker's business (nbgrader's kernel manager, with the job's
``kernel_name`` and ``env``): a sandboxed kernel or per-student credentials plug in there.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cleanup import Removed, learner_of, remove_learner_resources
from .containment import Containment
from .course import Source
from .intake import Submission, is_junk
from .outcome import INTERRUPTED, KERNEL_DIED, TIMED_OUT, Outcome
from .workfiles import LOG, RESULT, where

_start_lock = threading.Lock()
_context: Any = None


def context() -> Any:
    """A fork server that has imported nbgrader once (5-10 s per process otherwise); each worker
    is a fork of it: a clean single-threaded process, not a copy of this multi-threaded one."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["helpers._grading.preload"])
    return _context


def warm_up() -> None:
    """Start the fork server now (it imports nbgrader in the background)."""
    from multiprocessing import forkserver

    context()
    forkserver.ensure_running()


@dataclass
class Job:
    submission: Submission
    source: Source
    template: Path  # gradebook with the assignment's definitions only
    work: Path  # this submission's private course root (created here, removed by the run)
    timeout: float | None  # per cell (None: nbgrader_config.py's)
    submission_timeout: float
    cell_output_limit: int
    notebook_output_limit: int
    keep: bool = False  # keep the student's namespaces and containers for inspection
    env: dict[str, str] = field(default_factory=dict)  # the kernel's extra environment
    kernel_name: str | None = None  # a kernel spec other than the notebook's own
    sandbox: bool = False  # the notebook runs in helpers/_grading/sandbox.py's kernel
    containment: str | None = None  # force a containment kind (tests)

    @property
    def student(self) -> str:
        return self.submission.student

    @property
    def assignment(self) -> str:
        return self.submission.assignment


def _prepare(job: Job) -> Path:
    """The private course root; returns the job file."""
    work = job.work
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(
        job.submission.folder,
        work / "submitted" / job.student / job.assignment,
        ignore=lambda _folder, names: [n for n in names if is_junk(n)],
    )
    shutil.copytree(job.source.folder, work / "solutions" / job.assignment)
    shutil.copy(job.template, work / "gradebook.db")
    spec = {
        "root": str(work),
        "assignment": job.assignment,
        "student": job.student,
        "timeout": job.timeout,
        "cell_output_limit": job.cell_output_limit,
        "notebook_output_limit": job.notebook_output_limit,
        "env": job.env,
        "kernel_name": job.kernel_name,
        "sandbox": job.sandbox,
    }
    path = work / "job.json"
    path.write_text(json.dumps(spec))
    return path


def run_submission(job: Job, stop: threading.Event | None = None) -> Outcome:
    """Grade one submission in its own worker, bounded in time; everything it started is gone
    when this returns (and, unless ``job.keep``, its namespaces and containers)."""
    stop = stop or threading.Event()
    learner = learner_of(job.student)
    notes: list[str] = []
    phases: dict[str, float] = {}
    started = time.monotonic()
    if not job.keep:
        # Leftovers of an earlier run kept for inspection would change this grade. (A namespace
        # still terminating is no leftover: the notebook waits for it before making it again.)
        notes.extend(_cleanup(learner).problems)
    job_file = _prepare(job)
    phases["before"] = time.monotonic() - started
    containment = Containment.create(f"{learner}-{job.work.name}", job.containment)
    try:
        outcome, left = _supervise(job, job_file, containment, stop, started)
    finally:
        busy = containment.remove()
    if busy:
        notes.append(f"cgroups still busy after the kill, left behind: {', '.join(busy)}")
    phases["worker"] = time.monotonic() - started - phases["before"]
    if left:
        notes.append(f"{left} process(es) it left running were killed")
    removed = Removed()
    if not job.keep:
        # The run waits for the namespaces to be gone at its end, not here: deleting one takes
        # seconds, and the next submission does not need this one's to be gone.
        removed = _cleanup(learner)
        notes.extend(removed.problems)
        outcome.namespaces = removed.namespaces
    outcome.seconds = time.monotonic() - started
    phases["after"] = outcome.seconds - sum(phases.values())
    outcome.log = str(job.work / LOG)
    with open(outcome.log, "a") as log:
        timing = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())
        print(
            f"grader: {outcome.status} in {outcome.seconds:.1f} s ({timing}); {containment.kind}; "
            f"{left} process(es) left running; removed {removed.summary()}",
            file=log,
        )
    if notes:
        outcome.reason = "; ".join(filter(None, [outcome.reason, *notes]))
    return outcome


def _supervise(
    job: Job, job_file: Path, containment: Containment, stop: threading.Event, started: float
) -> tuple[Outcome, int]:
    """Start the worker, wait for it (at most the submission's limit), kill whatever is left in
    its containment. Returns the outcome and how many processes the submission left running."""
    from .worker import run

    with _start_lock:
        process = context().Process(
            target=run, args=(str(job_file), containment), name=f"grade {job.submission.key}"
        )
        process.start()
    deadline = started + job.submission_timeout
    timed_out = interrupted = False
    while process.exitcode is None:
        process.join(timeout=0.25)
        if process.exitcode is not None:
            break
        if stop.is_set():
            interrupted = True
            break
        if time.monotonic() > deadline:
            timed_out = True
            break
    position = where(job.work)
    exited = process.exitcode is not None
    killed = containment.kill_all(leader=process.pid)
    process.join(timeout=10)

    outcome = _read(job, time.monotonic() - started)
    if outcome is not None:  # the worker finished (a result written at the deadline counts)
        left = killed + int(outcome.result.get("left_running", 0))
        return outcome, left if exited else 0
    if interrupted:
        return Outcome(job.student, job.assignment, INTERRUPTED, "the run was stopped"), 0
    if timed_out:
        reason = (
            f"still running after the {job.submission_timeout:g} s limit for one submission, "
            f"{position}"
        )
        return Outcome(job.student, job.assignment, TIMED_OUT, reason), 0
    code = process.exitcode
    how = f"by {_signal_name(-code)}" if code is not None and code < 0 else f"with exit code {code}"
    reason = f"the grading process ended {how} {position}: does the code signal its parent?"
    return Outcome(job.student, job.assignment, KERNEL_DIED, reason), killed


def _cleanup(learner: str) -> Removed:
    try:
        return remove_learner_resources(learner, timeout=None)
    except Exception as error:  # never lose a grade to a cleanup problem
        removed = Removed()
        removed.problems.append(f"cleanup failed: {type(error).__name__}: {error}")
        return removed


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} (signal {number})"
    except ValueError:
        return f"signal {number}"


def _read(job: Job, seconds: float) -> Outcome | None:
    try:
        result = json.loads((job.work / RESULT).read_text())
    except (OSError, ValueError):
        return None
    return Outcome(
        job.student,
        job.assignment,
        result["status"],
        result.get("reason", ""),
        score=result.get("score"),
        max_score=result.get("max_score"),
        seconds=seconds,
        result=result,
        flags=result.get("flags", ""),
    )
