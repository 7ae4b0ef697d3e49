"""Processes by tree and group, for containment without cgroups (a laptop, not root): list a
worker's descendants (orphans re-parent to it, a subreaper), stop them all, then kill them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def kill_tree(members: list[int], leader: int | None) -> list[int]:
    # Stop them all first, so nothing forks between the listing and the kill.
    for pid in members:
        send(pid, signal.SIGSTOP)
    groups = {_pgid(pid) for pid in members} - {0, _pgid(os.getpid())}
    if leader is not None:
        # The worker led its own session: its group holds whatever it started that did not
        # start a session of its own, even after the worker itself died.
        groups.add(leader)
    for pid in members:
        send(pid, signal.SIGKILL)
        send(pid, signal.SIGCONT)
    for group in groups:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    return members


def reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


def send(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return 0


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.exists():  # macOS: ask ps
        import subprocess

        out = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True)
        for line in out.stdout.splitlines():
            pid, ppid = (int(x) for x in line.split())
            children.setdefault(ppid, []).append(pid)
        return children
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue  # a zombie is already dead
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree(leader: int) -> list[int]:
    """``leader`` and all its living descendants (orphans re-parent to it: it is a subreaper)."""
    children = _children_map()
    found: list[int] = []
    todo = [leader]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return [pid for pid in found if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return not Path("/proc").exists()
