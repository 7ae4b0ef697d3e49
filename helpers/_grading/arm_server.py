"""The throwaway process that runs a student's functions for the grader (``arm.py``).

The grader's kernel starts it as ``python -I arm_server.py`` (standard library only until the
notebook's setup runs) and writes one JSON line: what to run. It puts itself out of reach of that
kernel first, where Linux lets it (``isolate``):

- a user, mount and PID namespace of its own: the code it runs is PID 1 of a namespace of its
  own, so it can name (signal, ptrace) no process of the grader's, and reads nothing of the
  kernel's in /proc (another user namespace: no ptrace rights over it);
- the kernel's connection file (the key that signs its messages) and its sockets' folder
  hidden, its working folder hidden, a /tmp (and HOME) of its own: nothing the kernel reads
  later can be written from here;
- then every capability dropped (bounding set too) and no new privileges: the mounts cannot be
  undone, no namespace made again.

Then it runs the instructor's setup, the handed-over plain data and the student's definitions,
says it is ready, and answers calls: one JSON line in (function, arguments), one JSON line out
(the result as plain data, or the error), with what the call printed. Its stdout and stderr go to
a file of its own, never to the lines the grader reads.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
MS_BIND, MS_REC, MS_PRIVATE, MS_RDONLY = 0x1000, 0x4000, 1 << 18, 0x1
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PRINTED = ".printed"  # the calls' stdout and stderr, in the process's own /tmp
PRINTED_LIMIT = 64 * 1024  # bytes of a call's printing handed back


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


def isolate(
    hide_files: list[str], hide_folders: list[str], tmp: str, keep: Sequence[str] = ()
) -> list[str]:
    """Namespaces of its own, ``tmp`` as /tmp (with the folders in ``keep``, under /tmp, bound
    into it at their place), the grader's kernel's files hidden, no capabilities. Raises OSError
    if there can be no namespaces (nothing was changed then); returns what else could not be
    done."""
    libc = _libc()
    _call(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID), "unshare")
    missed: list[str] = []

    def attempt(result: int, what: str) -> None:
        if result != 0:
            missed.append(f"{what}: {os.strerror(ctypes.get_errno())}")

    attempt(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
    for path in keep:  # made in ``tmp`` by the grader's kernel
        inside = os.path.join(tmp, os.path.relpath(path, "/tmp"))
        attempt(
            libc.mount(path.encode(), inside.encode(), None, MS_BIND | MS_REC, None), f"keep {path}"
        )
    # /tmp first: what is hidden after it may have been under it (then it is gone already).
    attempt(libc.mount(tmp.encode(), b"/tmp", None, MS_BIND | MS_REC, None), "a /tmp of its own")
    for path in hide_files:
        if os.path.isfile(path):
            attempt(libc.mount(b"/dev/null", path.encode(), None, MS_BIND, None), f"hide {path}")
    for path in hide_folders:
        if os.path.isdir(path) and os.path.realpath(path) not in ("/", "/tmp"):
            mount = libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_RDONLY, b"size=4k")
            attempt(mount, f"hide {path}")
    try:
        drop_privileges(libc)
    except OSError as error:
        missed.append(str(error))
    return missed


def drop_privileges(libc: Any) -> None:
    """No capability left, in any set, and none to be had again (exec of a setuid file)."""
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails past the last cap: fine
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _call(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no new privileges")
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _call(libc.capset(ctypes.byref(header), data), "drop capabilities")


def is_plain(value: Any, depth: int = 0) -> bool:
    """Exactly str, int, float (finite), bool, None, and lists and str-keyed dicts of them."""
    kind = type(value)
    if value is None or kind in (str, int, bool):
        return True
    if kind is float:
        return bool(value == value and value not in (float("inf"), float("-inf")))
    if depth > 100:
        return False
    if kind is list:
        return all(is_plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(k) is str and is_plain(v, depth + 1) for k, v in value.items())
    return False


def _describe(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _student_frames(error: BaseException) -> list[str]:
    """The traceback of a call, from the student's code on (not this file's frames)."""
    frames = traceback.extract_tb(error.__traceback__)
    kept = [f for f in frames if f.filename != __file__]
    return traceback.format_list(kept)[-12:]


class Server:
    """Runs the definitions, then answers calls."""

    def __init__(self, program: dict[str, Any]) -> None:
        self.program = program
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self.problems: list[str] = []

    def define(self) -> None:
        values = self.program.get("globals") or {}
        exec(compile(self.program.get("setup", ""), "<the grader's setup>", "exec"), self.namespace)
        self.namespace.update(json.loads(json.dumps(values)))
        for statement in self.program.get("statements") or []:
            try:
                code = compile(statement["code"], f"<{statement['where']}>", "exec")
                exec(code, self.namespace)
            except Exception as error:
                self.problems.append(
                    f"{statement['where']}: {type(error).__name__}: {error}".strip()
                )
        self.namespace.update(json.loads(json.dumps(values)))

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["function"]
        function = self.namespace.get(name)
        if function is None or not callable(function):
            why = "; ".join(self.problems) or "no definition of it ran"
            return {"ok": False, "undefined": why}
        try:
            result = function(*request.get("args", []), **request.get("kwargs", {}))
        except Exception as error:
            message = str(error)
            missing = getattr(error, "name", None)
            unplain = (self.program.get("unplain") or {}).get(missing or "")
            if isinstance(error, NameError) and unplain:
                message += (
                    f" (it is a {unplain} in your notebook: the grader hands over plain data "
                    "only; make it inside the function)"
                )
            return {
                "ok": False,
                "error": {
                    "type": type(error).__name__,
                    "message": message,
                    "traceback": _student_frames(error),
                },
            }
        if not is_plain(result):
            return {"ok": False, "notplain": _describe(result)}
        return {"ok": True, "result": result}


def _printed_since(offset: int) -> tuple[str, int]:
    try:
        with open(os.path.join(os.environ["TMPDIR"], PRINTED), "rb") as stream:
            stream.seek(offset)
            data = stream.read(PRINTED_LIMIT + 1)
            end = stream.seek(0, os.SEEK_END)
    except OSError:
        return "", offset
    text = data[:PRINTED_LIMIT].decode("utf-8", "replace")
    if len(data) > PRINTED_LIMIT:
        text += "\n[… more printed output not kept …]\n"
    return text, end


def serve(program: dict[str, Any], requests: Any, answers: Any, isolated: str) -> None:
    # What the student's code prints goes to a file; the answers only to the grader's pipe.
    path = os.path.join(os.environ["TMPDIR"], PRINTED)
    printed = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(printed, 1)
    os.dup2(printed, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.chdir(os.environ["TMPDIR"])

    def answer(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message, allow_nan=False) + "\n")
        answers.flush()

    server = Server(program)
    offset = 0
    try:
        server.define()
    except BaseException as error:  # the setup itself failed: say so, and stop
        text, offset = _printed_since(offset)
        answer({"ready": False, "error": f"{type(error).__name__}: {error}", "printed": text})
        return
    text, offset = _printed_since(offset)
    answer({"ready": True, "isolated": isolated, "problems": server.problems, "printed": text})
    for line in requests:
        try:
            request = json.loads(line)
        except ValueError:
            return
        sys.stdout.flush()
        reply = server.call(request)
        sys.stdout.flush()
        sys.stderr.flush()
        reply["printed"], offset = _printed_since(offset)
        try:
            answer(reply)
        except ValueError:  # a float that is not finite slipped through: say so
            answer({"ok": False, "notplain": "float that is not finite", "printed": ""})


def main() -> None:
    requests = os.fdopen(os.dup(0), "r", buffering=1)
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    program = json.loads(requests.readline())
    plan = program.get("isolate") or {}
    libc = _libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # ends with the grader's kernel
    isolated, own_tmp = "", False
    try:
        if not plan:
            raise OSError(0, "not asked to")
        missed = isolate(
            plan.get("files", []), plan.get("folders", []), plan["tmp"], plan.get("keep", [])
        )
    except (OSError, AttributeError, KeyError) as error:
        isolated = str(error.args[-1] if error.args else error) or type(error).__name__
    else:
        isolated = "; ".join(missed)
        own_tmp = not any(line.startswith("a /tmp of its own") for line in missed)
        # The child waits until its pid is told, so that the grader reads it before "ready".
        told_read, told_write = os.pipe()
        child = os.fork()  # PID 1 of the new PID namespace: it runs the student's code
        if child:
            os.close(told_read)
            answers.write(json.dumps({"pid": child}) + "\n")
            answers.flush()
            os.close(told_write)
            _, status = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
        os.close(told_write)
        os.read(told_read, 1)  # returns once the parent has closed its end
        os.close(told_read)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    tmp = "/tmp" if own_tmp else plan.get("tmp") or "/tmp"
    if not os.path.isdir(tmp):
        tmp = "/"
    os.environ["HOME"] = os.path.join(tmp, "home")
    os.environ["TMPDIR"] = tmp
    serve(program, requests, answers, isolated)
    os._exit(0)


if __name__ == "__main__":
    main()
