"""A student's functions in the grader's kernel, called at arm's length.

A test the grader runs in its own kernel (``rerun.py``) may call a function the student wrote
(``list_pod_names(ns)``). The function's body is the student's code: it must not run in the
grader's kernel, where it could replace a check. So the name is bound there to a proxy: each call
goes, as JSON, to a throwaway process (``arm_server.py``) that ran the instructor's setup, the
plain data the function reads and the student's definitions, taken from the submitted notebook's
source (not from the student's objects). The result comes back as plain data, or the call fails
with a message that says why (an error in the function, a result that is not plain data, no answer
in time). ``inspect.getsource`` of the proxy gives the student's source of the function.

The process is started from the grader's kernel, so it has the same sandbox and credentials; it
puts itself in namespaces of its own, where it can reach nothing of that kernel (see
``arm_server.py``). One process serves the calls of one test cell; it is killed at the cell's end,
or when a call takes longer than ``CALL_LIMIT``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import linecache
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .._errors import CheckFailed
from .answers import is_plain

CALL_LIMIT = 30.0  # seconds one call may take (the cell has 120)
START_LIMIT = 60.0  # seconds the process may take to run the setup and the definitions
ANSWER_LIMIT = 16 * 1024 * 1024  # bytes of one answer line
SERVER = Path(__file__).resolve().with_name("arm_server.py")
LOG = ".server.log"  # in the process's /tmp: its stderr until it runs the student's code
_numbers = itertools.count(1)


class FunctionFailed(CheckFailed):
    """A call of the student's function failed: it raised, returned something that is not plain
    data, or did not answer in time."""


def harden() -> None:
    """Make this process (the grader's kernel) non-dumpable: a process of the same user cannot
    ptrace it or read its memory through /proc (there is no Yama here to stop that)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


def _shown(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    text = ", ".join(parts)
    return text if len(text) <= 80 else text[:77] + "..."


def _kernel_files() -> tuple[list[str], list[str]]:
    """This kernel's connection file, and the folders of its sockets and its work, to hide from
    the student's code."""
    files: list[str] = []
    folders = [os.getcwd()]
    try:
        from ipykernel.connect import get_connection_file

        connection = get_connection_file()
    except Exception:
        return files, folders
    files.append(os.path.realpath(connection))
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(Path(connection).read_text())
        if info.get("transport") == "ipc":
            folders.append(os.path.dirname(os.path.realpath(str(info["ip"]))))
    return files, folders


def _kept_under_tmp(scratch: Path) -> list[str]:
    """The folders the process imports from (helpers/, the Python environment) that lie under
    /tmp, as in a course cloned there: each gets an empty folder at the same place in the
    process's own /tmp, to be bound there before that replaces /tmp."""
    needed = {Path(__file__).resolve().parents[1], Path(sys.prefix).resolve()}
    kept = []
    for folder in sorted(needed):
        if folder.is_relative_to("/tmp") and folder != Path("/tmp"):
            (scratch / folder.relative_to("/tmp")).mkdir(parents=True, exist_ok=True)
            kept.append(str(folder))
    return kept


def _environment(scratch: Path) -> dict[str, str]:
    """This kernel's environment for the process, with a kubeconfig under /tmp copied into the
    process's own /tmp (``scratch``), which replaces /tmp there: without the copy, a kernel run
    outside the sandbox (whose kubeconfig is the grading's, under /tmp) gives the student's
    functions no cluster."""
    env = dict(os.environ)
    config = env.get("KUBECONFIG", "")
    if config and os.pathsep not in config and Path(config).resolve().is_relative_to("/tmp"):
        with contextlib.suppress(OSError):
            copy = scratch / "kubeconfig"
            shutil.copyfile(config, copy)
            os.chmod(copy, 0o600)
            env["KUBECONFIG"] = "/tmp/kubeconfig"
    return env


class Process:
    """The throwaway process of one test cell, started at its first call."""

    def __init__(self, program: dict[str, Any]) -> None:
        self.program = program
        self.popen: subprocess.Popen[bytes] | None = None
        self.inner: int | None = None  # PID 1 of its namespace, as this kernel sees it
        self.buffer = b""
        self.note = ""  # why it is not isolated, once said
        self.scratch: Path | None = None  # its /tmp

    # --- the process ---------------------------------------------------------------------

    def start(self) -> None:
        self.scratch = scratch = Path("/tmp") / "course-calls" / f"{os.getpid()}-{next(_numbers)}"
        (scratch / "home").mkdir(parents=True, exist_ok=True)
        files, folders = _kernel_files()
        keep = _kept_under_tmp(scratch)
        isolate = {"files": files, "folders": folders, "tmp": str(scratch), "keep": keep}
        program = {**self.program, "isolate": isolate}
        with open(scratch / LOG, "wb") as log:  # what the process says before it is isolated
            self.popen = subprocess.Popen(
                [sys.executable, "-I", str(SERVER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=str(scratch),
                env=_environment(scratch),
                start_new_session=True,
            )
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(program).encode() + b"\n")
        self.popen.stdin.flush()
        deadline = time.monotonic() + START_LIMIT
        first = self._read(deadline, "to start")
        if "pid" in first:
            self.inner = _child_of(self.popen.pid, first["pid"])
            first = self._read(deadline, "to start")
        _print(first.get("printed", ""))
        if not first.get("ready"):
            raise FunctionFailed(
                f"the grader could not set up your functions: {first.get('error', first)}"
            )
        if first.get("isolated"):
            self.note = str(first["isolated"])
            print(f"(the grader ran your function without namespaces of its own: {self.note})")

    def close(self) -> None:
        popen, self.popen = self.popen, None
        if popen is None:
            return
        for pid in (self.inner, popen.pid):
            if pid and pid != os.getpid():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: all of it ends
        with contextlib.suppress(OSError):
            os.killpg(popen.pid, signal.SIGKILL)
        for stream in (popen.stdin, popen.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)  # never follows a link it left

    def _read(self, deadline: float, doing: str) -> dict[str, Any]:
        """The next JSON line from the process, by ``deadline``."""
        assert self.popen is not None and self.popen.stdout is not None
        stream = self.popen.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise _TimedOut(doing)
            ready, _, _ = select.select([stream], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(stream, 65536)
            if not chunk:
                try:
                    code: int | None = self.popen.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    code = None
                said = self._last_words()
                self.close()
                raise FunctionFailed(
                    f"the process running your function ended before it answered"
                    f"{f' (exit code {code})' if code is not None else ''}: did the function "
                    f"end its own process, or signal it?{said}"
                )
            self.buffer += chunk
            if len(self.buffer) > ANSWER_LIMIT:
                self.close()
                raise FunctionFailed("your function's answer is larger than the grader takes")
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.close()
            raise FunctionFailed("the process running your function answered something unreadable")
        return message

    def _last_words(self) -> str:
        """The last line the process wrote on stderr before it ran the student's code."""
        if self.scratch is None:
            return ""
        try:
            lines = (self.scratch / LOG).read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f" ({lines[-1][:300]})" if lines else ""

    # --- a call ---------------------------------------------------------------------------

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        what = f"{name}({_shown(args, kwargs)})"
        if not is_plain(list(args)) or not is_plain(kwargs):
            raise TypeError(f"{what}: the grader passes plain data only to a student's function")
        try:
            if self.popen is None:
                self.start()
            assert self.popen is not None and self.popen.stdin is not None
            request = {"function": name, "args": list(args), "kwargs": kwargs}
            try:
                self.popen.stdin.write(json.dumps(request).encode() + b"\n")
                self.popen.stdin.flush()
            except OSError:
                self.close()
                raise FunctionFailed(
                    f"{what}: the process running your function ended before the call"
                ) from None
            reply = self._read(time.monotonic() + CALL_LIMIT, "to return")
        except _TimedOut as late:
            limit = CALL_LIMIT if late.doing == "to return" else START_LIMIT
            raise FunctionFailed(
                f"{what} did not return within {limit:g} s"
                if late.doing == "to return"
                else f"your functions were not set up within {limit:g} s",
                hint="the grader stops a call of your function there: does it wait for something?",
            ) from None
        except BaseException:
            self.close()  # interrupted (the cell's time is up): the process goes too
            raise
        _print(reply.get("printed", ""))
        if reply.get("ok") is True:
            return reply.get("result")
        if "undefined" in reply:
            raise FunctionFailed(
                f"{name} could not be defined from your answer cells ({reply['undefined']})",
                hint="define it with def in an answer cell above this test",
            )
        if "notplain" in reply:
            raise FunctionFailed(
                f"{name}() must return plain data: dicts, lists, strings, numbers "
                f"(it returned a {reply['notplain']})",
                hint="return the value itself, not an object that holds it",
            )
        error = reply.get("error") or {}
        frames = "".join(error.get("traceback") or [])
        raise FunctionFailed(
            f"{what} raised {error.get('type', 'an error')}: {error.get('message', '')}"
            + (f"\n{frames.rstrip()}" if frames else "")
        )


def _child_of(parent: int, pid: Any) -> int | None:
    """``pid`` if it is a child of ``parent`` (the process says which is its namespace's PID 1;
    whatever else says so is not believed)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return int(pid) if int(stat.rsplit(")", 1)[1].split()[1]) == parent else None
    except (OSError, ValueError, IndexError):
        return None


class _TimedOut(Exception):
    def __init__(self, doing: str) -> None:
        super().__init__(doing)
        self.doing = doing


def _print(text: str) -> None:
    if text:
        print(text, end="" if text.endswith("\n") else "\n")


def _proxy(name: str, source: str, process: Process) -> Any:
    """A function named ``name`` that calls the student's function in ``process``; its source
    (``inspect.getsource``) is the student's."""

    def proxy(*args: Any, **kwargs: Any) -> Any:
        return process.call(name, args, kwargs)

    filename = f"<your {name}, as the grader runs it>"
    lines = source.splitlines(keepends=True) or ["\n"]
    linecache.cache[filename] = (len(source), None, lines, filename)
    proxy.__code__ = proxy.__code__.replace(co_filename=filename, co_firstlineno=1, co_name=name)
    proxy.__name__ = proxy.__qualname__ = name
    proxy.__module__ = "__main__"
    return proxy


_OPEN: list[Process] = []


def install(namespace: dict[str, Any], spec: str) -> None:
    """Bind the student's functions in ``namespace`` (the grader's kernel's globals) to proxies.
    ``spec`` (JSON, from ``rerun.Handover``): the process's program, the functions and their
    source, and names whose plain values this kernel holds (set by earlier tests here)."""
    plan = json.loads(spec)
    program = plan["program"]
    values = dict(program.get("globals") or {})
    for name in plan.get("from_grader") or []:
        if name in namespace and is_plain(namespace[name]):
            values[name] = namespace[name]
    program["globals"] = values
    process = Process(program)
    _OPEN.append(process)
    for name, source in plan["functions"].items():
        namespace[name] = _proxy(name, source, process)


def close_all() -> None:
    """End the processes of the test that just ran."""
    while _OPEN:
        _OPEN.pop().close()
