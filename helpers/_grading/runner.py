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
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import CourseError
from . import network
from .cleanup import Removed, learner_of, remove_learner_resources
from .containment import Containment
from .course import Source
from .intake import Submission, strays
from .outcome import ERROR, INTERRUPTED, KERNEL_DIED, MEMORY_LIMIT, TIMED_OUT, Outcome
from .workfiles import LOG, RESULT, where

# Which cluster credentials a notebook is graded with.
CLASSROOM = "classroom account"  # the student's own, from make classroom
GRADING_ACCOUNT = "grading account"  # made for this submission, confined the same way, removed
YOURS = "your kubeconfig"  # the instructor's (CLASSROOM=0): the notebook can reach everything

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
    kubeconfig: str | None = None  # the notebook's cluster credentials (None: see credentials)
    credentials: str = "grading account"  # CLASSROOM, GRADING_ACCOUNT (made here) or YOURS
    kernel_name: str | None = None  # a kernel spec other than the notebook's own
    sandbox: bool = False  # the notebook runs in helpers/_grading/sandbox.py's kernel
    network: bool = False  # its kernels get network namespaces of their own (network.py)
    containment: str | None = None  # force a containment kind (tests)
    memory_limit: int = 2 * 2**30  # bytes the submission may use (where cgroups allow)
    pids_limit: int = 2048  # processes it may have at once

    @property
    def student(self) -> str:
        return self.submission.student

    @property
    def assignment(self) -> str:
        return self.submission.assignment


def _prepare(job: Job, namespaces: dict[str, str], kubeconfig: str | None) -> Path:
    """The private course root; returns the job file."""
    work = job.work
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(
        job.submission.folder, work / "submitted" / job.student / job.assignment, ignore=strays
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
        "kubeconfig": kubeconfig,
        "kernel_name": job.kernel_name,
        "sandbox": job.sandbox,
        "namespaces": namespaces,
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
    try:
        kubeconfig = _kubeconfig(job)
    except CourseError as error:
        reason = f"could not make the student's grading account: {error.message}"
        return Outcome(job.student, job.assignment, ERROR, reason)
    try:
        namespaces = _network_namespaces(job) if job.network else {}
    except OSError as error:
        _remove_account(job, notes)
        reason = f"could not make its network namespaces: {error}"
        return Outcome(job.student, job.assignment, ERROR, reason)
    roles = {role: str(made.path) for role, made in namespaces.items()}
    job_file = _prepare(job, roles, kubeconfig)
    phases["before"] = time.monotonic() - started
    containment = Containment.create(
        f"{learner}-{job.work.name}",
        job.containment,
        memory=job.memory_limit,
        pids=job.pids_limit,
    )
    try:
        outcome, left = _supervise(job, job_file, containment, stop, started)
        _over_memory(outcome, containment, job.memory_limit)
    finally:
        busy = containment.remove()
        for made in namespaces.values():
            made.delete()
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
    _remove_account(job, notes)
    outcome.seconds = time.monotonic() - started
    outcome.credentials = job.credentials
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


def _kubeconfig(job: Job) -> str | None:
    """The kubeconfig the notebook is graded with: the job's own, or a grading account's made
    now (none when there is no cluster to make it on: the notebook then reaches none)."""
    if job.credentials != GRADING_ACCOUNT:
        return job.kubeconfig
    from .._classroom import grading_account
    from .._errors import ClusterUnreachable

    path = job.work.with_name(f"{job.work.name}.kubeconfig")
    seconds = int(job.submission_timeout) + 600  # the token outlives the grading, not more
    try:
        return str(grading_account(job.student, job.assignment, path, seconds=seconds))
    except ClusterUnreachable:
        return None


def _remove_account(job: Job, notes: list[str]) -> None:
    if job.credentials != GRADING_ACCOUNT:
        return
    from .._classroom import remove_grading_account

    try:
        remove_grading_account(job.student)
    except CourseError as error:
        notes.append(f"its grading account was not removed: {error.message}")


def _network_namespaces(job: Job) -> dict[str, network.Namespace]:
    """A network namespace for each of the submission's kernels: the student's and the
    grader's own (network.py). Named after this process and the job: unique on the machine."""
    made: dict[str, network.Namespace] = {}
    try:
        for role in ("student", "grader"):
            made[role] = network.Namespace.create(f"{os.getpid()}-{job.work.name}-{role}")
    except OSError:
        for namespace in made.values():
            namespace.delete()
        raise
    return made


def _over_memory(outcome: Outcome, containment: Containment, limit: int) -> None:
    """A submission whose process the OOM killer ended at the memory limit is not gradable for
    that reason, whatever else it died of; a graded one keeps its grade, with a note."""
    kills = containment.oom_kills()
    if not kills or outcome.status == INTERRUPTED:
        return
    said = f"{kills} process(es) ended at the memory limit of {limit / 2**30:g} GiB"
    if outcome.graded:
        outcome.reason = "; ".join(filter(None, [outcome.reason, said]))
        return
    outcome.status = MEMORY_LIMIT
    outcome.reason = (
        f"the notebook used more than the {limit / 2**30:g} GiB one submission may use "
        f"({said}; before: {outcome.reason})"
    )


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
