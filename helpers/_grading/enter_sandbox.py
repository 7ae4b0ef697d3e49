"""Start a grading kernel in the sandbox: ``python -I -S enter_sandbox.py PLAN CONNECTION_FILE``.

The kernel spec written by ``sandbox.install_kernel_spec`` runs this script. ``PLAN`` holds bwrap's
options for every kernel of one grading (worked out once by ``sandbox.mounts``); this adds the
kernel's own: its connection file (read-only), its working folder and the folder of its Unix
sockets (writable), the variables it may inherit, and its network namespace, then becomes bwrap.

The kernel does not write in the folder nbgrader writes the graded notebook to: it works in a
copy of it, shown at the same path. Else it could leave a link there (``NAME.ipynb -> /etc/passwd``)
and nbgrader, writing the graded notebook as the instructor, would write through it.

As root, before it becomes bwrap, it hands the kernel's copy and connection file to the sandbox's
user, makes the kernel the first the OOM killer takes, and enters the kernel's network namespace
(``COURSE_SANDBOX_ROLE``: ``student``, the default, or ``grader``). Inside, ``setpriv`` drops root
for that user, every capability and the right to gain any back. Standard library only: it starts
in milliseconds.
"""

import ctypes
import json
import os
import shutil
import sys
import tempfile
from typing import Any

CLONE_NEWNET = 0x40000000
ROLE = "COURSE_SANDBOX_ROLE"
KERNEL_OOM_SCORE_ADJ = "500"  # the OOM killer takes a kernel before the grader's worker


def sockets_folder(connection_file: str) -> str | None:
    """The folder of the kernel's Unix sockets, when the grader chose IPC transport."""
    try:
        with open(connection_file) as stream:
            connection = json.load(stream)
    except (OSError, ValueError):
        return None
    if connection.get("transport") != "ipc":
        return None
    return os.path.dirname(os.path.realpath(str(connection["ip"])))


def passable_parents(path: str) -> list[str]:
    """bwrap options that make the folders above ``path`` ones the sandbox's user may pass
    through (bwrap makes them root's own, 0700, which only root could)."""
    parents = []
    folder = os.path.dirname(path)
    while folder not in ("/", ""):
        parents.append(folder)
        folder = os.path.dirname(folder)
    args = []
    for parent in reversed(parents):
        args += ["--perms", "0755", "--dir", parent]
    return args


def drop_root(user: list[int]) -> list[str]:
    """The command that, inside the sandbox, becomes ``user`` with no way back to root."""
    uid, gid = user
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def command(
    plan: dict[str, Any],
    connection_file: str,
    workdir: str,
    environ: dict[str, str],
    copy: str | None = None,
) -> list[str]:
    """The bwrap command line that starts the kernel in ``workdir`` (``copy``: the folder shown
    there instead, if the kernel works in a copy)."""
    own = os.path.realpath(connection_file)
    sockets = sockets_folder(connection_file)
    args = ["bwrap", *plan["mounts"]]
    for path in filter(None, (own, workdir, sockets)):
        args += passable_parents(path)
    args += ["--ro-bind", own, own]
    args += ["--bind", copy or workdir, workdir, "--chdir", workdir]
    if sockets is not None:  # the kernel makes its Unix sockets there
        args += ["--bind", sockets, sockets]
    for name in plan.get("passed", []):
        if name in environ:
            args += ["--setenv", name, environ[name]]
    kernel = [*plan["kernel"], "-f", connection_file]
    if plan.get("user"):
        kernel = [*drop_root(plan["user"]), *kernel]
    return [*args, "--", *kernel]


def hand_over(path: str, user: list[int]) -> None:
    """Give ``path`` (a folder: all it holds) to ``user``, never following a link: a link
    the student left there must not hand over what it points at."""
    uid, gid = user
    os.chown(path, uid, gid, follow_symlinks=False)
    if os.path.islink(path) or not os.path.isdir(path):
        return
    for folder, folders, files in os.walk(path):
        for name in folders + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def enter_network(namespace: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(namespace, os.O_RDONLY)
    try:
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"cannot enter the network namespace {namespace}")
    finally:
        os.close(descriptor)


def working_copy(plan: dict[str, Any], workdir: str) -> str:
    """A copy of ``workdir`` for the kernel to work in (links copied as links, never followed)."""
    folder = plan.get("copies") or os.path.dirname(workdir)
    os.makedirs(folder, mode=0o711, exist_ok=True)
    copy = os.path.join(tempfile.mkdtemp(prefix="kernel-", dir=folder), "work")
    shutil.copytree(workdir, copy, symlinks=True)
    return copy


def prepare(plan: dict[str, Any], connection_file: str, copy: str, role: str) -> None:
    """As root: the kernel's files to its user, its OOM score, its network namespace."""
    namespaces = plan.get("namespaces") or {}
    if namespaces and role not in namespaces:
        raise SystemExit(f"no network namespace for a {role!r} kernel: refusing to start it")
    user = plan.get("user")
    if user:
        for path in (copy, connection_file, sockets_folder(connection_file)):
            if path:
                hand_over(path, user)
    with open("/proc/self/oom_score_adj", "w") as score:
        score.write(KERNEL_OOM_SCORE_ADJ)
    if role in namespaces:
        enter_network(namespaces[role])


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -I -S enter_sandbox.py PLAN CONNECTION_FILE")
    with open(argv[0]) as stream:
        plan = json.load(stream)
    workdir = os.getcwd()
    copy = working_copy(plan, workdir)
    if os.geteuid() == 0:
        prepare(plan, argv[1], copy, os.environ.get(ROLE, "student"))
    args = command(plan, argv[1], workdir, dict(os.environ), copy)
    os.execvp(args[0], args)


if __name__ == "__main__":
    main(sys.argv[1:])
