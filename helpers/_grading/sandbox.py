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

The grader works out the mounts once (``install_kernel_spec``) and writes them next to the kernel
spec. The spec's command is ``enter_sandbox.py PLAN CONNECTION_FILE``, a script of the standard
library only: it adds what differs per kernel (its connection file, its working folder, the folder
of its sockets) and becomes ``bwrap``. Starting it costs milliseconds, not the second that
importing the course's package costs, twice per submission.
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
LAUNCHER = Path(__file__).resolve().with_name("enter_sandbox.py")
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
    """Write the sandbox's kernel spec and its plan under ``data_dir/kernels``; returns its name.
    Put ``data_dir`` on ``JUPYTER_PATH`` for it to be found. Call it once the environment is as
    the kernels will see it (the engine guard's socket, the kubeconfig)."""
    folder = data_dir / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    plan = folder / "sandbox.json"
    plan.write_text(
        json.dumps({"mounts": mounts(), "kernel": [sys.executable, "-m", "ipykernel_launcher"]})
    )
    spec = {
        # -I -S: the launcher needs nothing but the standard library.
        "argv": [sys.executable, "-I", "-S", str(LAUNCHER), str(plan), "{connection_file}"],
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


def docker_socket() -> Path | None:
    """The engine's Unix socket, if Docker is reached through one."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return None  # a TCP engine is reached over the shared network
    socket = Path(host.removeprefix("unix://")).resolve()
    return socket if socket.exists() else None


def mounts() -> list[str]:
    """bwrap's options for every kernel of this grading: what the sandbox shows and its
    environment. enter_sandbox.py adds each kernel's own folders and its command."""
    from .._cluster import backend, kubeconfig_path

    args = ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
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
    readable = [Path(sys.base_prefix), Path(sys.prefix), HELPERS]
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
    return args
