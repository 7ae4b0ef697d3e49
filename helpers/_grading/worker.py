"""The grading of one submission, in a process of its own.

The grader forks it (from a fork server that has nbgrader imported already) with a job file. It
joins its containment first, so its kernel and everything the student's code starts can be killed
together; then it runs nbgrader's autograde and feedback in the submission's private course root,
whose gradebook holds only the assignment's definitions, and writes ``result.json``: the scores to
merge into the class gradebook, or the reason the submission could not be graded, named from the
exception nbgrader really raised (its full log is in ``grading.log``).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute

from .. import helm
from . import credentials, network, rerun, sandbox, tampering
from .cleanup import learner_of
from .containment import Containment
from .course import api, config
from .engine_guard import EngineGuard, UnsupportedEngine, upstream_from_environment
from .enter_sandbox import ROLE
from .execute import CUT_MARK, CappedExecute
from .outcome import CHECKSUM, ERROR, GRADED, INVALID, KERNEL_DIED, TIMED_OUT, one_line
from .workfiles import LOG, PROGRESS, RERUNS, RESULT, running_cell, where


class RecordingAutograde(Autograde):  # type: ignore[misc]  # nbgrader is untyped
    """nbgrader's Autograde, keeping the first exception it raised (nbgrader logs it and raises
    a generic "see the log" error instead)."""

    failure: BaseException | None = None

    def _record(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        try:
            super().init_assignment(assignment_id, student_id)
        except BaseException as error:
            self._record(error)
            raise

    def convert_single_notebook(self, notebook_filename: str) -> None:
        try:
            super().convert_single_notebook(notebook_filename)
        except BaseException as error:
            self._record(error)
            raise


class _Restored(logging.Handler):
    """Collects nbgrader's warnings about edited cells it put back."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.cells: dict[str, set[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Attribute '") and "has changed" in message:
            attribute = message.split("'")[1]
            cell = message.split(" for cell ", 1)[1].split(" has changed")[0]
            # A checksum differs for every test cell with hidden tests in a blank release:
            # only edits of the cell's nbgrader attributes are worth a note.
            if attribute != "checksum":
                self.cells.setdefault(cell, set()).add(attribute)


def preprocessors(configured: Any = None) -> list[type]:
    """Autograde's preprocessors (the course's, if nbgrader_config.py sets them), with
    Execute replaced by CappedExecute."""
    chosen = configured or Autograde.class_traits()["autograde_preprocessors"].default()
    return [CappedExecute if p is Execute else p for p in chosen]


def classify(error: BaseException, root: Path, timeout: float | None) -> tuple[str, str]:
    """The status and one-line reason for an exception nbgrader raised."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat.reader import NotJSONError
    from nbgrader.nbgraderformat import SchemaTooNewError, SchemaTooOldError

    name = type(error).__name__
    text = str(error)
    cause = f"{name}: {one_line(text)}"
    if isinstance(error, KeyboardInterrupt):
        return KERNEL_DIED, f"the grading process was interrupted (SIGINT) {where(root)}"
    if isinstance(error, DeadKernelError):
        return KERNEL_DIED, (
            f"the kernel died {where(root)}: the code ended its own process (os._exit, a "
            f"signal) or ran out of memory ({cause})"
        )
    if isinstance(error, CellTimeoutError):
        message = next(
            (line.split(":", 1)[1].strip() for line in text.splitlines() if "message was" in line),
            one_line(text),
        )
        limit = f"the {timeout:g} s cell limit" if timeout else "the cell limit"
        return TIMED_OUT, (
            f"{running_cell(root) or 'a cell'} ran past {limit} and did not stop when "
            f"interrupted (does a bare except: catch the interrupt?) ({name}: {message})"
        )
    if name == "UnresponsiveKernelError":
        return TIMED_OUT, f"the kernel stopped answering {where(root)} ({cause})"
    if isinstance(error, NotJSONError):
        return INVALID, cause
    if isinstance(error, SchemaTooOldError | SchemaTooNewError):
        return CHECKSUM, f"the nbgrader metadata was edited to another format version ({cause})"
    if isinstance(error, RuntimeError) and "Inconsistent checksums" in text:
        return CHECKSUM, f"a locked cell was edited and cannot be restored ({cause})"
    if name == "ValidationError":
        inner = error.__context__
        detail = f"; {type(inner).__name__}: {one_line(str(inner))}" if inner else ""
        return CHECKSUM, f"nbgrader rejected the cells' metadata ({cause}{detail})"
    return ERROR, cause


def _scores(root: Path, assignment: str, student: str) -> dict[str, Any]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as book:
        submission = book.find_submission(assignment, student)
        notebooks = {}
        for notebook in submission.notebooks:
            notebooks[notebook.name] = {
                "late_submission_penalty": notebook.late_submission_penalty,
                "grades": {
                    grade.name: {
                        "auto_score": grade.auto_score,
                        "max_score": grade.max_score,
                        "needs_manual_grade": grade.needs_manual_grade,
                    }
                    for grade in notebook.grades
                },
                "comments": {comment.name: comment.auto_comment for comment in notebook.comments},
            }
        return {
            "score": submission.score,
            "max_score": submission.max_score,
            "timestamp": submission.timestamp.isoformat() if submission.timestamp else None,
            "notebooks": notebooks,
        }


def _cut_cells(folder: Path) -> int:
    count = 0
    for path in folder.glob("*.ipynb"):
        try:
            notebook = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for cell in notebook.get("cells", []):
            if any(CUT_MARK in "".join(o.get("text", "")) for o in cell.get("outputs", [])):
                count += 1
    return count


def grade(job: dict[str, Any], containment: Containment | None = None) -> dict[str, Any]:
    """Autograde and write feedback for the one submission in the job's private course root.
    Once the notebook has run, whatever it left running is killed (``containment``) before the
    scores are read."""
    from nbgrader.utils import temp_attrs
    from traitlets.config import Config

    root = Path(job["root"])
    assignment, student = job["assignment"], job["student"]
    guard: EngineGuard | None = None
    relay: network.Relay | None = None
    notes: list[str] = []
    extra = Config()
    extra.Autograde.autograde_preprocessors = preprocessors(
        config(root).Autograde.get("autograde_preprocessors")
    )
    extra.CappedExecute.cell_output_limit = job["cell_output_limit"]
    extra.CappedExecute.notebook_output_limit = job["notebook_output_limit"]
    extra.CappedExecute.progress_file = str(root / PROGRESS)
    extra.CappedExecute.reruns = rerun.plans(root / "solutions" / assignment)
    extra.CappedExecute.rerun_folder = str(root / "grader-checks")
    extra.CappedExecute.rerun_record = str(root / RERUNS)
    # Its folder is not the student's: it learns whose work it checks from the environment;
    # and its network is its own (network.py), not the student's kernel's.
    extra.CappedExecute.rerun_env = {"COURSE_LEARNER": student, ROLE: "grader"}
    # The kernel talks to the grader over Unix sockets in a folder of this grading's own: TCP
    # ports picked free by one grader can be taken by another before its kernel binds them.
    sockets = root / "kernel"
    sockets.mkdir(mode=0o700, exist_ok=True)
    extra.KernelManager.transport = "ipc"
    extra.KernelManager.ip = str(sockets / "k")
    if job.get("kernel_name"):
        extra.Execute.kernel_name = job["kernel_name"]
    elif job.get("sandbox"):
        guard, relay = _sandbox(
            root, student, job.get("kubeconfig"), job.get("namespaces") or {}, notes
        )
        extra.Execute.kernel_name = sandbox.KERNEL_NAME
        extra.CappedExecute.rerun_sandboxed = True
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [str(root / "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])]
        )
    execute = {"timeout": job["timeout"]} if job.get("timeout") else {}
    grader = api(root, extra=extra, **execute)
    timeout = grader.config.Execute.get("timeout")

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s %(levelname)s] %(message)s"))
    restored = _Restored()
    with temp_attrs(grader.coursedir, assignment_id=assignment, student_id=student):
        app = RecordingAutograde(coursedir=grader.coursedir, parent=grader)
        app.force = True
        app.create_student = True
        app.log.addHandler(handler)
        app.log.addHandler(restored)
        try:
            app.start()
        except BaseException as error:
            failure = app.failure or error
            print("".join(traceback.format_exception(failure)), file=sys.stderr, flush=True)
            status, reason = classify(failure, root, timeout)
            return {"status": status, "reason": reason, "error": f"{type(failure).__name__}"}
        finally:
            app.log.removeHandler(handler)
            app.log.removeHandler(restored)
            left = containment.kill_others() if containment else 0
            if guard is not None:
                guard.stop()
            if relay is not None:
                relay.close()
                if relay.refused:
                    print(f"network: refused {', '.join(relay.refused[:20])}", flush=True)

    cut = _cut_cells(root / "autograded" / student / assignment)
    if cut:
        notes.append(f"output cut in {cut} cell(s)")
    if restored.cells:
        edited = ", ".join(
            f"{c} ({'/'.join(sorted(a))})" for c, a in sorted(restored.cells.items())
        )
        notes.append(f"edited cells restored by nbgrader: {edited}")
    result = grader.generate_feedback(assignment, student, force=True)
    if not result.get("success"):
        print(result.get("log", ""), result.get("error", ""), file=sys.stderr, flush=True)
        lines = str(result.get("error", "")).strip().splitlines()
        notes.append(f"no feedback: {one_line(lines[-1] if lines else 'see the log')}")
    flags = _flag(root, student, assignment)
    return {
        "status": GRADED,
        "reason": "; ".join(notes),
        "flags": flags,
        "left_running": left,
        **_scores(root, assignment, student),
    }


def _sandbox(
    root: Path, student: str, chosen: str | None, namespaces: dict[str, str], notes: list[str]
) -> tuple[EngineGuard | None, network.Relay | None]:
    """Everything the sandboxed kernels reach, made for this student: their kubeconfig (a copy
    of ``chosen``), the engine guard, the network relay into their namespaces; then the kernel
    spec that uses them. Returns the guard and the relay, to stop when the notebook is done;
    adds to ``notes`` what the notebook goes without (no Docker behind a TLS engine)."""
    learner = learner_of(student)
    user = sandbox.sandbox_user()
    private = root / "sandbox"
    private.mkdir(mode=0o711, exist_ok=True)
    kubeconfig = hosts = None
    api: set[network.Endpoint] = set()
    if chosen is not None:
        flat = credentials.flatten(Path(chosen))
        kubeconfig = credentials.write_private(flat, private / "kubeconfig", user)
        name, port, addresses = credentials.api_server(flat)
        api = {(address, port) for address in addresses}
        api.add(helm.REGISTRY_ENDPOINT)  # the course's registry (chapter 07), shared by all
        if namespaces and name not in addresses and name != "localhost":
            hosts = private / "hosts"  # the name must lead to the relay, inside
            lines = ["127.0.0.1 localhost", "::1 localhost", *(f"{a} {name}" for a in addresses)]
            hosts.write_text("\n".join(lines) + "\n")
    try:
        engine = upstream_from_environment(os.environ)
    except UnsupportedEngine as error:
        engine = None
        print(f"engine guard: {error}", file=sys.stderr, flush=True)
        notes.append(f"no Docker in the notebook: {error}")
    relay = None
    if namespaces:
        for path in namespaces.values():
            for address, _ in api:
                network.Namespace(Path(path).name).add_address(address)
        relay = network.Relay(
            [Path(p) for p in namespaces.values()],
            allowed=lambda endpoint: endpoint in api or _published(engine, learner, endpoint[1]),
        )
        for endpoint in api:
            relay.open(endpoint)
    guard = None
    if engine is not None:  # the notebook's Docker: only this student's containers

        def on_ports(ports: set[int]) -> None:  # a container of theirs publishes these
            for port in ports:
                if relay is not None:
                    relay.open(("127.0.0.1", port))

        guard = EngineGuard(learner, root / "docker.sock", engine, on_ports=on_ports)
        guard.start()
    sandbox.install_kernel_spec(
        root / "jupyter",
        kubeconfig=kubeconfig,
        docker_socket=guard.socket_path if guard else None,
        user=user,
        copies=root / "kernel-files",
        namespaces=namespaces,
        hosts=hosts,
    )
    return guard, relay


def _published(engine: str | None, learner: str, port: int) -> bool:
    """Whether one of the learner's containers publishes ``port`` on this machine now."""
    if engine is None:
        return False
    import docker

    address = engine if "://" in engine else f"unix://{engine}"
    client = docker.APIClient(base_url=address, timeout=10)
    try:
        listed = client.containers(filters={"label": f"course.learner={learner}"})
    finally:
        client.close()
    return any(p.get("PublicPort") == port for c in listed for p in c.get("Ports") or [])


def _flag(root: Path, student: str, assignment: str) -> str:
    """Answer cells that reach for the grading itself (tampering.py), also written at the top
    of the student's feedback page: the grade stands until the instructor has looked."""
    found = [
        finding
        for path in sorted((root / "submitted" / student / assignment).glob("*.ipynb"))
        for finding in tampering.flags(json.loads(path.read_text()))
    ]
    if (root / RERUNS).exists():
        for line in (root / RERUNS).read_text().splitlines():
            failed = json.loads(line)
            found.append(
                f"{failed['grade_id']}: the grader's own kernel could not run it "
                f"({one_line(failed['error'])})"
            )
    if not found:
        return ""
    note = (
        '<div style="border:2px solid #c33;padding:8px;margin:8px">Flagged for your '
        "instructor, who will look at this grade: " + html.escape("; ".join(found)) + "</div>"
    )
    for page in (root / "feedback" / student / assignment).glob("*.html"):
        text = page.read_text()
        body = re.search(r"<body[^>]*>", text)
        if body:
            page.write_text(text[: body.end()] + note + text[body.end() :])
    return "; ".join(found)


def run(job_file: str, containment: Containment) -> None:
    """The worker process's entry point."""
    containment.join()  # first of all: everything started from here on is contained
    job = json.loads(Path(job_file).read_text())
    root = Path(job["root"])
    log = os.open(root / LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    # A signal from the submission's code ends this process as it would any other (SIGINT: a
    # KeyboardInterrupt); the grader then reports the kernel died, naming the signal and cell.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_DFL)
    os.environ.update(job.get("env") or {})
    # The notebook's cluster credentials are the job's, never whatever the grader's are: a
    # kernel outside the sandbox inherits this (a file that is not there: no cluster at all).
    os.environ["KUBECONFIG"] = job.get("kubeconfig") or str(Path(job["root"]) / "no-kubeconfig")
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's SQLAlchemy use
    started = time.monotonic()
    print(
        f"grading {job['student']}/{job['assignment']} in {root} ({containment.kind})", flush=True
    )
    try:
        result = grade(job, containment)
    except BaseException as error:
        print("".join(traceback.format_exception(error)), file=sys.stderr, flush=True)
        status, reason = classify(error, root, job.get("timeout"))
        result = {"status": status, "reason": reason, "error": type(error).__name__}
    result["seconds"] = time.monotonic() - started
    result["left_running"] = result.get("left_running", 0) + containment.kill_others()
    partial = root / (RESULT + ".part")
    partial.write_text(json.dumps(result))
    partial.rename(root / RESULT)
    print(f"done: {result['status']} {result.get('reason', '')}", flush=True)
