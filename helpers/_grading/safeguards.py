"""What protects a class run, decided before it starts: whether the notebooks run in the sandbox,
the defences this machine cannot give (said in one line each), the cluster credentials each
student is graded with, and which learners are never graded at once."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from .._errors import CourseError
from . import gradebook
from .runner import CLASSROOM, GRADING_ACCOUNT, YOURS


def sandbox_wanted(wanted: bool, kernel_name: str | None, out: TextIO) -> bool:
    """Whether the notebooks run in the sandbox; says so when one was wanted and cannot be."""
    from .sandbox import available  # not at import: the sandbox's kernel runs that module

    if not wanted or kernel_name:
        return False
    if available():
        return True
    print(
        " ! no sandbox: bwrap is missing or cannot run here (apt install bubblewrap), so the "
        "students' code runs with your rights and sees the course folder",
        file=out,
        flush=True,
    )
    return False


def credentials_for(
    student: str, classroom: Callable[[str], Path | None] | None, yours: bool
) -> dict[str, Any]:
    """The Job fields that say which kubeconfig a student's notebook is graded with."""
    if yours:
        from .._cluster import kubeconfig_path

        chosen = kubeconfig_path()
        return {"kubeconfig": chosen.split(os.pathsep)[0] if chosen else None, "credentials": YOURS}
    own = classroom(student) if classroom else None
    if own is not None:
        return {"kubeconfig": str(own), "credentials": CLASSROOM}
    return {"kubeconfig": None, "credentials": GRADING_ACCOUNT}


def say_what_is_missing(sandboxed: bool, options: Any, out: TextIO) -> bool:
    """One line for each protection this machine cannot give a graded notebook (nothing when
    all are there). Returns whether the kernels get network namespaces of their own."""
    from .containment import Containment
    from .network import unavailable
    from .sandbox import sandbox_user

    missing = []
    probe = Containment.create(f"probe-{os.getpid()}", memory=options.memory_limit)
    probe.remove()
    if probe.missing():
        missing.append(f"{'; '.join(probe.missing())}: one notebook can take the machine")
    why_not = unavailable()
    if why_not:
        missing.append(
            f"no network isolation ({why_not}): notebooks reach whatever listens on this machine"
        )
    try:
        sandbox_user()
    except (OSError, KeyError) as error:  # each submission then fails to start, saying why
        missing.append(f"the kernels cannot leave root: {error}")
    for line in missing:
        print(f" ! {line}", file=out, flush=True)
    return why_not is None


def overlap(learner: str, other: str) -> bool:
    """Whether two learners' names can collide: the same learner, or one's prefix (``alice-``)
    begins the other's names (``alice-bob-01-web``). Such learners are never graded at once:
    one could take a name the other's notebook is about to use."""
    return learner == other or learner.startswith(f"{other}-") or other.startswith(f"{learner}-")


@contextmanager
def one_run_at_a_time(root: Path) -> Iterator[None]:
    """Two runs on one course would both write its gradebook: the second one stops at once."""
    lock = root / gradebook.STATE_DIR / "run.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CourseError(
                f"Another grading run is working on {root}.",
                hint="Wait for it to finish (or stop it), then run make grade again.",
            ) from None
        yield
