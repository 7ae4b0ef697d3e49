"""Settings of a class grading run, read from ``nbgrader_config.py`` (``c.ClassGrading.*``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Integer
from traitlets.config import Configurable

# What one submission in flight takes: the worker (nbgrader, about 200 MB) and the kernel (the
# course helpers, about 150 MB), with room to spare.
MEMORY_PER_JOB = 768 * 2**20


class ClassGrading(Configurable):
    """How ``make grade`` grades a class."""

    jobs = Integer(0, help="Submissions graded at once; 0 means what this machine can take.").tag(
        config=True
    )
    submission_timeout = Float(
        900, help="Seconds one submission may take in all (every cell, kernel start, feedback)."
    ).tag(config=True)
    cell_output_limit = Integer(
        256 * 1024, help="Bytes of output one cell may keep; the rest is cut, with a note."
    ).tag(config=True)
    notebook_output_limit = Integer(
        2 * 1024 * 1024, help="Bytes of output one notebook may keep, over all its cells."
    ).tag(config=True)
    sandbox = Bool(
        True,
        help="Run each notebook in a bubblewrap sandbox (helpers/_grading/sandbox.py) where "
        "bwrap works: it sees only its own folder, not the gradebook, solutions/ or other "
        "students' work.",
    ).tag(config=True)
    memory_limit = Integer(
        2 * 2**30,
        help="Bytes of memory one submission may use (its grader, kernels and what they start); "
        "past it the submission is not gradable: memory limit.",
    ).tag(config=True)
    pids_limit = Integer(2048, help="Processes (and threads) one submission may have at once.").tag(
        config=True
    )
    cleanup_timeout = Float(
        120, help="Seconds to wait for a student's namespaces to be gone after grading."
    ).tag(config=True)


def settings(config: Any) -> ClassGrading:
    return ClassGrading(config=config)


def _memory_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_jobs() -> int:
    """Two submissions more than there are cores, fewer if memory is short: a grading kernel
    mostly waits on the cluster and the engine (pods starting, rollouts), and while it waits
    another one can run. Measured on 2 cores (`make bench`, 60 submissions): 3 at a time used
    78 % of the CPU, 4 at a time 90 % and graded the class 8 % faster, in 860 MiB."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    memory = _memory_available()
    by_memory = cores + 2 if memory is None else memory // MEMORY_PER_JOB
    return max(1, min(cores + 2, by_memory, 8))
