"""The grading kernel in a bubblewrap sandbox (``bwrap``, Debian's ``bubblewrap``).

nbgrader runs a student's notebook as the instructor. In this kernel the notebook sees only:

- its own folder (``autograded/<student>/<assignment>``), the only place it can write (with
  the folder of its Unix sockets to the grader);
- the system (``/usr``, ``/etc`` without the password hashes) and the course's Python
  environment and ``helpers/``, read-only;
- Docker through ``engine_guard.py`` (the student's own containers only, nothing of the
  host's), and one kubeconfig of the student's own (``credentials.py``), read-only;
- an empty ``/tmp`` and ``HOME`` of its own;
- an environment of a few named variables (``ENVIRONMENT``, ``PASSED``), not the grader's;
- a network of its own (``network.py``): loopback, where the grader relays the API server and
  the student's own published ports, and nothing else of this machine or beyond.

Not the gradebook, ``solutions/``, other students' folders, the rest of the course folder or the
instructor's home: they are not there at all. As root, the kernel runs as an unprivileged user
(``nobody``): root-only files the system folders hold stay closed to it. It has no capabilities,
its own PID namespace (it cannot see or signal anything outside), and dies with the grader.

The grader works out the mounts once (``install_kernel_spec``) and writes them next to the kernel
spec. The spec's command is ``enter_sandbox.py PLAN CONNECTION_FILE``, a script of the standard
library only: it adds what differs per kernel (its connection file, its working folder, the folder
of its sockets, its network namespace) and becomes ``bwrap``. Starting it costs milliseconds, not
the second that importing the course's package costs, twice per submission.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
from pathlib import Path

from ..helm import SANDBOX_BINARY
from .enter_sandbox import passable_parents

KERNEL_NAME = "course-sandbox"
HELPERS = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().with_name("enter_sandbox.py")
# Files in /etc that nothing in a notebook needs and nobody should read.
MASKED = ("/etc/shadow", "/etc/gshadow", "/etc/ssh")
SANDBOX_USER = "nobody"  # who the kernel runs as when the grader is root
KUBECONFIG = "/run/course/kubeconfig"  # where the student's kubeconfig is, inside
DOCKER_SOCKET = "/run/docker.sock"  # where the engine guard's socket is, inside
TOOLS = str(SANDBOX_BINARY.parent)  # where helm is, inside (chapter 07)
# Variables the launcher hands from the grader's environment to the kernel; nothing else passes.
PASSED = ("COURSE_LEARNER", "NBGRADER_EXECUTION", "COURSE_DEBUG", "NO_COLOR")


def available(attempts: int = 3) -> bool:
    """bwrap is installed and can make a sandbox here (it cannot in some containers). Asked up to
    ``attempts`` times: one failed probe (a busy machine) must not grade a class unsandboxed."""
    if sys.platform != "linux" or shutil.which("bwrap") is None:
        return False
    import subprocess
    import time

    for attempt in range(attempts):
        probe = subprocess.run(
            ["bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--cap-drop", "ALL", "true"],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return True
        if attempt + 1 < attempts:
            time.sleep(0.5 * (attempt + 1))
    return False


def sandbox_user() -> tuple[int, int] | None:
    """The (uid, gid) the kernel runs as: ``nobody`` when the grader is root, else None (the
    kernel is the instructor's own user, who holds nothing more than the instructor)."""
    if os.geteuid() != 0:
        return None
    if shutil.which("setpriv") is None:
        raise OSError("setpriv (util-linux) is missing: the kernel cannot drop root")
    entry = pwd.getpwnam(SANDBOX_USER)
    return entry.pw_uid, entry.pw_gid


def install_kernel_spec(
    data_dir: Path,
    *,
    kubeconfig: Path | None,
    docker_socket: Path | None,
    user: tuple[int, int] | None,
    copies: Path,
    namespaces: dict[str, str] | None = None,
    hosts: Path | None = None,
) -> str:
    """Write the sandbox's kernel spec and its plan under ``data_dir/kernels``; returns its name.
    Put ``data_dir`` on ``JUPYTER_PATH`` for it to be found.

    ``kubeconfig``: the student's own (``credentials.write_private``); ``docker_socket``: the
    engine guard's; ``user``: who the kernel runs as (``sandbox_user``); ``copies``: where each
    kernel's copy of its working folder goes (the grader's, not the student's); ``namespaces``: the
    network namespace of each kernel role (``student``, ``grader``; ``network.py``); ``hosts``:
    an /etc/hosts for names only the relay answers."""
    folder = data_dir / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    plan = folder / "sandbox.json"
    plan.write_text(
        json.dumps(
            {
                "mounts": mounts(kubeconfig, docker_socket, user, hosts),
                "kernel": [sys.executable, "-m", "ipykernel_launcher"],
                "user": list(user) if user else None,
                "copies": str(copies),
                "namespaces": namespaces or {},
                "passed": list(PASSED),
            }
        )
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


def _helm_binary() -> str | None:
    """The helm the host's notebooks use, if there is one (inside, it is on PATH)."""
    from .. import helm
    from .._errors import CommandFailed

    try:
        return str(Path(helm.binary()).resolve())
    except CommandFailed:
        return None


def environment(kubeconfig: bool, docker: bool) -> dict[str, str]:
    """The kernel's whole environment, before the launcher adds ``PASSED`` variables."""
    from .._cluster import backend

    found = {
        "PATH": os.pathsep.join(
            [str(Path(sys.executable).parent), TOOLS, "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        "HOME": "/tmp/home",
        "LANG": "C.UTF-8",
        "MPLCONFIGDIR": "/tmp/home/.matplotlib",
        "IPYTHONDIR": "/tmp/home/.ipython",
        "COURSE_SANDBOX": "1",
        "COURSE_CLUSTER": backend(),  # decided here: inside, what it is guessed from is hidden
    }
    if kubeconfig:
        found["KUBECONFIG"] = KUBECONFIG
    if docker:
        found["DOCKER_HOST"] = f"unix://{DOCKER_SOCKET}"
    return found


def mounts(
    kubeconfig: Path | None,
    docker: Path | None,
    user: tuple[int, int] | None,
    hosts: Path | None = None,
) -> list[str]:
    """bwrap's options for every kernel of this grading: what the sandbox shows and its
    environment. enter_sandbox.py adds each kernel's own folders, its network and its command."""
    args = ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if user is not None:  # what setpriv needs to drop root inside, and nothing more
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--tmpfs", "/tmp", "--perms", "0777", "--dir", "/tmp/home"]
    for folder in ("/usr", "/etc"):
        args += ["--ro-bind", folder, folder]
    for masked in MASKED:
        if Path(masked).is_file():
            args += ["--ro-bind", "/dev/null", masked]
        elif Path(masked).is_dir():
            args += ["--tmpfs", masked]
    if hosts is not None:
        args += ["--ro-bind", str(hosts), "/etc/hosts"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if Path(top).is_symlink():  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(top), top]
        elif Path(top).is_dir():
            args += ["--ro-bind", top, top]
    # The interpreter may live in a home folder (pyenv): only its own folder is shown, below
    # folders the sandbox's user may pass through (bwrap would make them root's own, 0700).
    for path in dict.fromkeys([Path(sys.base_prefix), Path(sys.prefix), HELPERS]):
        if not str(path).startswith(("/usr/", "/etc/")):
            args += passable_parents(str(path))
        args += ["--ro-bind", str(path), str(path)]
    if kubeconfig is not None:
        args += [*passable_parents(KUBECONFIG), "--ro-bind", str(kubeconfig), KUBECONFIG]
    helm = _helm_binary()
    if helm is not None:
        args += [*passable_parents(f"{TOOLS}/helm"), "--ro-bind", helm, f"{TOOLS}/helm"]
    if docker is not None:
        args += [*passable_parents(DOCKER_SOCKET), "--ro-bind", str(docker), DOCKER_SOCKET]
        if Path("/var/run").is_symlink():
            args += ["--symlink", os.readlink("/var/run"), "/var/run"]  # docker's default address
    args += ["--clearenv"]
    for name, value in environment(kubeconfig is not None, docker is not None).items():
        args += ["--setenv", name, value]
    return args
