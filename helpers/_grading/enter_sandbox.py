"""Start a grading kernel in the sandbox: ``python -I -S enter_sandbox.py PLAN CONNECTION_FILE``.

The kernel spec written by ``sandbox.install_kernel_spec`` runs this script. ``PLAN`` holds bwrap's
options for every kernel of one grading (worked out once by ``sandbox.mounts``); this adds the
kernel's own: its connection file (read-only), its working folder and the folder of its Unix
sockets (writable), then becomes bwrap. Standard library only: it starts in milliseconds.
"""

import json
import os
import sys
from typing import Any


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


def command(plan: dict[str, Any], connection_file: str, workdir: str) -> list[str]:
    """The bwrap command line that starts the kernel in ``workdir``."""
    own = os.path.realpath(connection_file)
    args = ["bwrap", *plan["mounts"], "--ro-bind", own, own]
    args += ["--bind", workdir, workdir, "--chdir", workdir]
    sockets = sockets_folder(connection_file)
    if sockets is not None:  # the kernel makes its Unix sockets there
        args += ["--bind", sockets, sockets]
    return [*args, *plan["kernel"], "-f", connection_file]


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -I -S enter_sandbox.py PLAN CONNECTION_FILE")
    with open(argv[0]) as stream:
        plan = json.load(stream)
    args = command(plan, argv[1], os.getcwd())
    os.execvp(args[0], args)


if __name__ == "__main__":
    main(sys.argv[1:])
