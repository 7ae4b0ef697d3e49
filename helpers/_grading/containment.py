"""Every process a submission starts, found, bounded and killed when its grading ends.

A submission's worker joins a fresh cgroup before it starts anything; the kernel it launches and
everything the student's code starts (``setsid``, ``nohup``, double forks) stay in that cgroup,
whatever their process group or parent. Killing is freeze, SIGKILL every member, thaw, repeat until
empty: nothing can fork while frozen, so nothing escapes.

The cgroup also bounds the submission, so one notebook cannot take the machine (and the local
cluster on it) from the others graded beside it:

- **processes** (``pids``): a fork bomb stops at ``PIDS_MAX``;
- **memory** (``memory``): past the limit the kernel's OOM killer ends the hog (the grader's own
  worker is spared: its OOM score is lowered); the submission is then "not gradable: memory
  limit";
- **CPU** (``cpu``): each submission is one group of the CPU scheduler, so a thousand busy
  processes in one get the same share as one busy process in another.

Three ways, best first:

- cgroup v1 (freezer, pids, memory, cpu), as root: ``/sys/fs/cgroup/<controller>/course-grading/
  <name>``.
- cgroup v2, as root: a child of the grader's own cgroup, killed with ``cgroup.kill``; the limits
  need the memory, pids and cpu controllers delegated to that cgroup (the grader then moves
  itself into a leaf ``course-grader`` so it may hand them to its children).
- Elsewhere (a laptop, not root): the worker leads its own session and is a child subreaper
  (Linux), so orphans re-parent to it instead of init; the kill stops and kills the worker's
  process tree and every process group it contains. A process that both leaves the session and
  re-parents away from the worker (possible only where there is no subreaper, e.g. macOS)
  escapes. No limits.

``Containment.limits`` names the limits in force; the run says which are missing, in one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .processes import kill_tree, reap_children, send, tree

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP = "course-grading"
PIDS_MAX = 2048  # processes (threads count too) one submission may have at once
MEMORY_MAX = 2 * 2**30  # bytes one submission may use: its worker, kernels and what they start
PR_SET_CHILD_SUBREAPER = 36
V1_CONTROLLERS = ("freezer", "pids", "memory", "cpu")  # freezer first: it lists the members
V2_LEAF = "course-grader"  # where the grader moves itself on cgroup v2 (no internal processes)
WORKER_OOM_SCORE_ADJ = -900  # the OOM killer takes the student's hog, not the worker
LIMITS = ("processes", "memory", "cpu")


def _v1_available() -> bool:
    if os.geteuid() != 0:
        return False
    return (CGROUP_ROOT / "freezer" / "cgroup.procs").exists()


def _own_v1_path(controller: str) -> str:
    """This process's cgroup in a v1 hierarchy, relative ("" at the top): the submissions' go
    below it, so whatever bounds the grader bounds them too."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path.lstrip("/")
    return ""


def _own_v2_cgroup(root: Path = CGROUP_ROOT) -> Path | None:
    """This process's cgroup on a pure cgroup v2 machine, else None."""
    if not (root / "cgroup.controllers").exists():
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None:
        return None
    own_path = root / own.lstrip("/")
    if own_path.name == V2_LEAF:  # moved there by _delegate_v2 earlier in this run
        own_path = own_path.parent
    return own_path


def _delegate_v2(own: Path) -> set[str]:
    """Hand the memory, pids and cpu controllers of our own cgroup to its children, where they
    are available to it; returns those handed. A cgroup that hands controllers down may hold no
    processes itself, so the grader first moves what is in it into a leaf of its own."""
    wanted = {"memory", "pids", "cpu"}
    try:
        available = set((own / "cgroup.controllers").read_text().split())
        enabled = set((own / "cgroup.subtree_control").read_text().split())
    except OSError:
        return set()
    missing = (wanted & available) - enabled
    if missing:
        try:
            leaf = own / V2_LEAF
            leaf.mkdir(exist_ok=True)
            for pid in (own / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, OSError):
                    (leaf / "cgroup.procs").write_text(pid)
            (own / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in missing))
        except OSError:
            return wanted & enabled
    return wanted & (enabled | missing)


def best_kind() -> str:
    """Which containment this machine allows: ``cgroup-v1``, ``cgroup-v2`` or ``session``."""
    forced = os.environ.get("COURSE_GRADING_CONTAINMENT")
    if forced in ("cgroup-v1", "cgroup-v2", "session"):
        return forced
    if _v1_available():
        return "cgroup-v1"
    own = _own_v2_cgroup()
    if os.geteuid() == 0 and own is not None and (own / "cgroup.procs").exists():
        return "cgroup-v2"
    return "session"


@dataclass(frozen=True)
class Containment:
    """Where one submission's processes live. Picklable: the worker gets it and joins it."""

    name: str
    kind: str
    paths: tuple[str, ...] = ()  # the cgroups it joins; the first one lists the members
    limits: tuple[str, ...] = ()  # the limits in force (LIMITS), e.g. ("processes", "memory")
    problems: tuple[str, ...] = ()  # why a limit is missing, one short line each

    # --- created by the grader -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        kind: str | None = None,
        *,
        memory: int = MEMORY_MAX,
        pids: int = PIDS_MAX,
        root: Path = CGROUP_ROOT,
    ) -> Containment:
        """A fresh containment for one submission, bounded by ``memory`` bytes and ``pids``
        processes where the machine allows (``root``: the cgroup file system, for tests)."""
        kind = kind or best_kind()
        if kind == "cgroup-v1":
            return cls._create_v1(name, memory, pids, root)
        if kind == "cgroup-v2":
            return cls._create_v2(name, memory, pids, root)
        return cls(name, "session", problems=("not root: no cgroup, so no limits",))

    @classmethod
    def _create_v1(cls, name: str, memory: int, pids: int, root: Path) -> Containment:
        paths: list[str] = []
        limits: list[str] = []
        problems: list[str] = []
        settings = {
            "pids": ("processes", {"pids.max": str(pids)}),
            "memory": ("memory", {"memory.limit_in_bytes": str(memory)}),
            "cpu": ("cpu", {}),  # a group of its own is the fair share; nothing to write
        }
        for controller in V1_CONTROLLERS:
            if not (root / controller / "cgroup.procs").exists():
                if controller in settings:
                    problems.append(f"no {controller} controller mounted at {root / controller}")
                continue
            path = root / controller / _own_v1_path(controller) / GROUP / name
            path.mkdir(parents=True, exist_ok=True)
            paths.append(str(path))
            if controller not in settings:
                continue
            limit, files = settings[controller]
            try:
                for file, value in files.items():
                    (path / file).write_text(value)
            except OSError as error:
                problems.append(f"cannot set {controller} limit: {error.strerror}")
                continue
            limits.append(limit)
        return cls(name, "cgroup-v1", tuple(paths), tuple(limits), tuple(problems))

    @classmethod
    def _create_v2(cls, name: str, memory: int, pids: int, root: Path) -> Containment:
        own = _own_v2_cgroup(root)
        assert own is not None
        problems: list[str] = []
        delegated = _delegate_v2(own)
        # A child of our own cgroup: cgroup.kill needs no controller, the limits do.
        child = own / f"{GROUP}-{name}"
        child.mkdir(parents=True, exist_ok=True)
        limits: list[str] = []
        settings = {
            "pids": ("processes", {"pids.max": str(pids)}),
            "memory": ("memory", {"memory.max": str(memory)}),
            "cpu": ("cpu", {}),
        }
        for controller, (limit, files) in settings.items():
            if controller not in delegated:
                problems.append(f"the {controller} controller is not delegated to {own}")
                continue
            try:
                for file, value in files.items():
                    (child / file).write_text(value)
                if controller == "memory" and (child / "memory.swap.max").exists():
                    (child / "memory.swap.max").write_text("0")  # the limit is the limit
            except OSError as error:
                problems.append(f"cannot set {controller} limit: {error.strerror}")
                continue
            limits.append(limit)
        return cls(name, "cgroup-v2", (str(child),), tuple(limits), tuple(problems))

    def missing(self) -> list[str]:
        """The limits not in force, with why: empty when the submission is fully bounded."""
        absent = [limit for limit in LIMITS if limit not in self.limits]
        if not absent:
            return []
        return [f"no {limit} limit" for limit in absent] + list(self.problems)

    def oom_kills(self) -> int:
        """How many processes the OOM killer ended for going past the memory limit."""
        for path in self.paths:
            for file in ("memory.oom_control", "memory.events"):  # v1, v2
                try:
                    text = (Path(path) / file).read_text()
                except OSError:
                    continue
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return 0

    # --- in the worker, before it starts anything ---------------------------------------------

    def join(self) -> None:
        """Put the calling process in the containment (its children follow)."""
        if self.kind.startswith("cgroup"):
            for path in self.paths:
                with open(Path(path) / "cgroup.procs", "w") as handle:
                    handle.write(str(os.getpid()))
            # The worker shares the memory limit with the student's code: the OOM killer must
            # take the hog, whose kernel would otherwise outlive the grader that reports it.
            with contextlib.suppress(OSError):
                Path("/proc/self/oom_score_adj").write_text(str(WORKER_OOM_SCORE_ADJ))
            return
        with contextlib.suppress(OSError):  # already a session leader
            os.setsid()
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # not Linux: process groups only

    # --- from the grader, when the submission is done ------------------------------------

    def members(self, leader: int | None = None) -> list[int]:
        """The processes still in the containment (``leader``: the worker's pid, for
        the session kind)."""
        if self.kind.startswith("cgroup"):
            try:
                text = (Path(self.paths[0]) / "cgroup.procs").read_text()
            except OSError:
                return []
            return [int(pid) for pid in text.split()]
        if leader is None:
            return []
        return tree(leader)

    def kill_all(self, leader: int | None = None, timeout: float = 10.0) -> int:
        """Kill every process in the containment; returns how many there were. ``leader`` is the
        worker's pid (the session kind follows its process tree and process group)."""
        killed: set[int] = set()
        deadline = time.monotonic() + timeout
        while True:
            members = self.members(leader)
            if self.kind == "cgroup-v1" and members:
                self._freeze(True)
                members = self.members(leader)
                for pid in members:
                    send(pid, signal.SIGKILL)
                self._freeze(False)
            elif self.kind == "cgroup-v2" and members:
                (Path(self.paths[0]) / "cgroup.kill").write_text("1")
            elif self.kind == "session":
                members = kill_tree(members, leader)
            killed.update(members)
            if not self.members(leader) or time.monotonic() > deadline:
                return len(killed)
            time.sleep(0.05)

    def kill_others(self) -> int:
        """From the worker, once the notebook has run: kill every other process in the
        containment (what the student's code left running), so nothing of the submission runs
        while the worker reads the scores and writes its result. Returns how many there were."""
        if self.kind == "session":
            return self.kill_descendants()
        me = os.getpid()
        killed: set[int] = set()
        for _ in range(100):
            others = [pid for pid in self.members() if pid != me]
            if not others:
                break
            for pid in others:
                send(pid, signal.SIGSTOP)  # no forking between the listing and the kill
            for pid in others:
                send(pid, signal.SIGKILL)
                send(pid, signal.SIGCONT)
            killed.update(others)
            time.sleep(0.02)
        return len(killed)

    def kill_descendants(self) -> int:
        """From the worker itself, as it ends (session kind): kill what it started and left
        behind. As a subreaper it is the parent of every orphan, so the tree finds them all."""
        if self.kind != "session":
            return 0
        me = os.getpid()
        killed = 0
        for _ in range(20):
            members = [pid for pid in tree(me) if pid != me]
            if not members:
                break
            killed += len(kill_tree(members, None))
            reap_children()
        return killed

    def _freeze(self, frozen: bool) -> None:
        state = Path(self.paths[0]) / "freezer.state"
        state.write_text("FROZEN" if frozen else "THAWED")
        if frozen:
            deadline = time.monotonic() + 2
            while state.read_text().strip() != "FROZEN" and time.monotonic() < deadline:
                time.sleep(0.01)

    def remove(self) -> list[str]:
        """Remove the (empty) cgroups; returns those still busy after 30 s."""
        busy: list[str] = []
        deadline = time.monotonic() + 30  # a loaded machine takes seconds to finish the exits
        for path in self.paths:
            while True:
                try:
                    Path(path).rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        busy.append(str(path))
                        break
                    time.sleep(0.1)  # the last members are still exiting
        return busy
