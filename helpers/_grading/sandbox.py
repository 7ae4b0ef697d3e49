"""The grading kernel in a bubblewrap sandbox (``bwrap``, Debian's ``bubblewrap``).

nbgrader runs a student's notebook as the instructor. In this kernel the notebook sees only:

- its own folder (``autograded/<student>/<assignment>``), the only place it can write (with
  the folder of its Unix sockets to the grader);
- the system (``/usr``, ``/etc`` without the password hashes) and the course's Python
  environment and ``helpers/``, read-only;
- Docker through ``engine_guard.py`` (the student's own containers only, nothing of the
  host's), and the cluster credentials the course's calls need, read-only;
- an empty ``/tmp`` and ``HOME`` of its own.

Not the gradebook, ``solutions/``, other students' folders, the rest of the course folder or the
instructor's home: they are not there at all. It runs with no capabilities, in its own PID
namespace (it cannot see or signal anything outside), and dies with the grader.

The kernel spec's command is ``python -m helpers._grading.sandbox CONNECTION_FILE``: this module
works out the mounts from the kernel's working folder and environment, then becomes ``bwrap``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

KERNEL_NAME = "course-sandbox"
HELPERS = Path(__file__).resolve().parent.parent
# Files in /etc that nothing in a notebook needs and nobody should read.
MASKED = ("/etc/shadow", "/etc/gshadow", "/etc/ssh")


def available() -> bool:
    """bwrap is installed and can make a sandbox here (it cannot in some containers)."""
    if sys.platform != "linux" or shutil.which("bwrap") is None:
        return False
    import subprocess

    probe = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--cap-drop", "ALL", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def install_kernel_spec(data_dir: Path) -> str:
    """Write the sandbox's kernel spec under ``data_dir/kernels``; returns its name. Put
    ``data_dir`` on ``JUPYTER_PATH`` for it to be found."""
    folder = data_dir / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "helpers._grading.sandbox", "{connection_file}"],
        "display_name": "Python 3 (course sandbox)",
        "language": "python",
        # A signal to bwrap would end the sandbox: the kernel interrupts itself on request.
        "interrupt_mode": "message",
    }
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return KERNEL_NAME


def _kubeconfig_files(path: Path) -> list[Path]:
    """The kubeconfig and the files it names (certificates, keys, token files)."""
    try:
        config: Any = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    named = [path]
    entries = (config.get("clusters") or []) + (config.get("users") or [])
    for entry in entries:
        for key, value in (entry.get("cluster") or entry.get("user") or {}).items():
            if key in ("certificate-authority", "client-certificate", "client-key", "tokenFile"):
                named.append((path.parent / str(value)).resolve())
    return [p for p in named if p.is_file()]


def _ipc_folder(connection_file: str) -> Path | None:
    """The folder of the kernel's Unix sockets, when the grader chose IPC transport."""
    try:
        connection = json.loads(Path(connection_file).read_text())
    except (OSError, ValueError):
        return None
    if connection.get("transport") != "ipc":
        return None
    return Path(connection["ip"]).resolve().parent


def docker_socket() -> Path | None:
    """The engine's Unix socket, if Docker is reached through one."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return None  # a TCP engine is reached over the shared network
    socket = Path(host.removeprefix("unix://")).resolve()
    return socket if socket.exists() else None


def command(connection_file: str, workdir: Path) -> list[str]:
    """The bwrap command line that starts the kernel in ``workdir``."""
    from .._cluster import backend, kubeconfig_path

    args = ["bwrap", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/tmp/home"]
    for folder in ("/usr", "/etc"):
        args += ["--ro-bind", folder, folder]
    for masked in MASKED:
        if Path(masked).is_file():
            args += ["--ro-bind", "/dev/null", masked]
        elif Path(masked).is_dir():
            args += ["--tmpfs", masked]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if Path(top).is_symlink():  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(top), top]
        elif Path(top).is_dir():
            args += ["--ro-bind", top, top]
    # The interpreter may live in a home folder (pyenv): only its own folder is shown.
    readable = [Path(sys.base_prefix), Path(sys.prefix), HELPERS, Path(connection_file).resolve()]
    guard = os.environ.get("COURSE_DOCKER_GUARD")  # engine_guard.py's socket for this student
    socket = docker_socket() if guard is None else None
    if socket is not None:
        readable.append(socket)
    elif guard is not None:
        args += ["--ro-bind", guard, "/run/docker.sock"]
    kubeconfig = kubeconfig_path()
    if kubeconfig is not None:
        kubeconfig = kubeconfig.split(os.pathsep)[0]
        readable += _kubeconfig_files(Path(kubeconfig))
    for path in readable:
        args += ["--ro-bind", str(path), str(path)]
    if (socket is not None or guard is not None) and Path("/var/run").is_symlink():
        args += ["--symlink", os.readlink("/var/run"), "/var/run"]  # docker's default address
    args += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    sockets = _ipc_folder(connection_file)
    if sockets is not None:  # the kernel makes its Unix sockets there
        args += ["--bind", str(sockets), str(sockets)]
    environment = {
        "HOME": "/tmp/home",
        "MPLCONFIGDIR": "/tmp/home/.matplotlib",
        "IPYTHONDIR": "/tmp/home/.ipython",
        "COURSE_SANDBOX": "1",
        "COURSE_CLUSTER": backend(),  # decided here: inside, what it is guessed from is hidden
    }
    if kubeconfig is not None:
        environment["KUBECONFIG"] = str(kubeconfig)
    if guard is not None:
        environment["DOCKER_HOST"] = "unix:///run/docker.sock"
    for name, value in environment.items():
        args += ["--setenv", name, value]
    # The kernel's parent inside is the sandbox's PID 1: it must not watch for its parent
    # (it would take PID 1 for a parent gone); --die-with-parent ends it with the grader.
    args += ["--unsetenv", "JPY_PARENT_PID"]
    return [*args, sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m helpers._grading.sandbox CONNECTION_FILE")
    args = command(argv[0], Path.cwd())
    os.execvp(args[0], args)


if __name__ == "__main__":
    main(sys.argv[1:])
