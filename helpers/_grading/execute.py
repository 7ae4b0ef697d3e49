"""nbgrader's Execute preprocessor with output capped in bytes, per cell and per notebook, before
the output is kept: 50 MB of printing never reaches the graded notebook or the feedback page.

Where output is cut, a note says so (on stdout: nbgrader reads anything on stderr as a failed
test). What decides a test's score is never dropped: every error, a cell's first stderr output and
every result are kept, shortened if they are large, so the grade is the same as without the cap.

It also records which cell is running in a small file, so the grader can say where a submission
was when its time ran out or its kernel died, and runs the tests tagged ``rerun-by-grader`` a
second time in a kernel of the grader's own (``rerun.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import output_from_msg
from nbgrader.preprocessors import Execute
from traitlets import Dict, Integer, Unicode

from . import rerun

CUT_MARK = "[… output cut here by the grader:"
KEPT_WHEN_OVER = 2048  # bytes kept of a grade-deciding output once the budget is spent


def _size(output: Any) -> int:
    if output.get("output_type") == "stream":
        return len(output.get("text", "").encode("utf-8", "replace"))
    return len(json.dumps(output, default=str).encode())


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8", "replace")[: max(limit, 0)]
    return data.decode("utf-8", "ignore")


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class CappedExecute(Execute):  # type: ignore[misc]  # nbgrader is untyped
    cell_output_limit = Integer(256 * 1024, help="Bytes of output one cell keeps.").tag(config=True)
    notebook_output_limit = Integer(2 * 1024 * 1024, help="Bytes one notebook keeps.").tag(
        config=True
    )
    progress_file = Unicode("", help="Where to write the running cell (JSON).").tag(config=True)
    reruns = Dict({}, help="rerun.plans() of the assignment: tests run again.").tag(config=True)
    rerun_folder = Unicode("", help="The grader's kernel's own empty folder.").tag(config=True)
    rerun_env = Dict({}, help="Added to the grader's kernel's environment (the student).").tag(
        config=True
    )
    rerun_record = Unicode("", help="Where to add the tests that failed only when run again.").tag(
        config=True
    )

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        self._kept_before = 0  # bytes kept by the cells before the running one
        self._dropped: dict[int, int] = {}
        self._notes: dict[int, Any] = {}
        self._stderr_kept: set[int] = set()
        self._checker: Any = None  # the grader's kernel client, once started
        self._checker_manager: Any = None
        self._checker_launch: Any = None  # the task that boots it
        self._checker_problem: str | None = None  # why it could not be set up

    # --- where we are ----------------------------------------------------------------------

    def _record_progress(self, cell: Any, index: int) -> None:
        if not self.progress_file:
            return
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        text = json.dumps({"cell": index, "grade_id": grade_id, "started": time.time()})
        try:
            with open(self.progress_file, "w") as handle:
                handle.write(text)
        except OSError:
            pass

    async def async_execute_cell(
        self,
        cell: Any,
        cell_index: int,
        execution_count: int | None = None,
        store_history: bool = True,
    ) -> Any:
        if cell.cell_type == "code":
            self._record_progress(cell, cell_index)
            if self._plan().get("cells"):
                self._launch_checker()
        result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        self._finish_cell(cell, cell_index)
        if cell.cell_type == "code":
            await self._rerun(cell)
        return result

    # nbclient binds the synchronous wrapper to its own coroutine: bind it to ours.
    execute_cell = run_sync(async_execute_cell)

    def preprocess(self, nb: Any, resources: Any = None, *args: Any, **kwargs: Any) -> Any:
        self._notebook_name = str((resources or {}).get("unique_key", ""))
        try:
            return super().preprocess(nb, resources, *args, **kwargs)
        finally:
            if self._checker_launch is not None:
                run_sync(self._stop_checker)()

    # --- tests run again in the grader's own kernel ------------------------------------------

    def _plan(self) -> dict[str, Any]:
        return dict(self.reruns.get(getattr(self, "_notebook_name", ""), {}))

    async def _rerun(self, cell: Any) -> None:
        plan = self._plan()
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        source = plan.get("cells", {}).get(grade_id)
        if source is None or _failed(cell.get("outputs", [])):
            return  # not rerun, or already failed
        started = time.monotonic()
        try:
            names = rerun.answers_read(source, plan["setup"])
            values = await self._export(names) if names else {}
            await self._start_checker(plan["setup"])
            await self._in_checker(rerun.import_code(values), "setting the handed-over answers")
            await self._in_checker(source, "")
            self.log.info("rerun %s: passed in %.1f s", grade_id, time.monotonic() - started)
        except _RerunFailed as failure:
            self.log.info("rerun %s: failed: %s", grade_id, failure.summary)
            cell.outputs.append(
                NotebookNode(output_type="stream", name="stdout", text=rerun.HEADER)  # type: ignore[no-untyped-call]
            )
            cell.outputs.append(failure.output)
            if self.rerun_record:
                line = json.dumps({"grade_id": grade_id, "error": failure.summary})
                with open(self.rerun_record, "a") as record:
                    record.write(line + "\n")

    async def _export(self, names: list[str]) -> dict[str, Any]:
        """The answers the test reads, from the student's kernel, as plain data."""
        outputs = await _execute(self.kc, rerun.export_code(names), self.timeout)
        try:
            return rerun.parse_export(outputs, names)
        except ValueError as error:
            raise _RerunFailed("AnswersNotHandedOver", str(error)) from None

    def _launch_checker(self) -> None:
        """Start the grader's kernel in the background, at the notebook's first cell: it boots
        while the student's cells run. Its setup runs later, at the first rerun."""
        if self._checker_launch is None:
            self._checker_launch = asyncio.ensure_future(self._boot_checker())

    async def _boot_checker(self) -> Any:
        manager = self.kernel_manager_class(kernel_name=self.km.kernel_name, config=self.config)
        if self.km.transport == "ipc":
            # Its sockets in a folder of their own: the student's sandbox can write to the
            # folder of its kernel's sockets, and must not reach these.
            sockets = Path(self.km.ip).parent.with_name("grader-kernel")
            sockets.mkdir(mode=0o700, exist_ok=True)
            manager.transport = "ipc"
            manager.ip = str(sockets / "k")
        folder = Path(self.rerun_folder) if self.rerun_folder else Path.cwd() / "grader-checks"
        folder.mkdir(parents=True, exist_ok=True)
        self._checker_manager = manager
        await manager.start_kernel(
            cwd=str(folder),
            env={**os.environ, **self.rerun_env},
            extra_arguments=self.extra_arguments,
        )
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=self.startup_timeout)
        return client

    async def _start_checker(self, setup: str) -> None:
        if self._checker_problem is not None:
            raise _RerunFailed("GraderKernelNotReady", self._checker_problem)
        if self._checker is not None:
            return
        self._launch_checker()
        try:
            self._checker = await self._checker_launch
        except Exception as error:
            self._checker_problem = (
                f"the grader's kernel did not start: {type(error).__name__}: {error}"
            )
            raise _RerunFailed("GraderKernelNotReady", self._checker_problem) from None
        try:
            await self._in_checker(setup, "the grader's setup")
        except _RerunFailed as failure:
            self._checker_problem = f"the grader's kernel could not be set up: {failure.summary}"
            raise

    async def _in_checker(self, code: str, what: str) -> None:
        outputs = await _execute(self._checker, code, self.timeout)
        for output in outputs:
            if output.get("output_type") == "error":
                if what:
                    output = NotebookNode(  # type: ignore[no-untyped-call]
                        output_type="error",
                        ename=output.get("ename", "Error"),
                        evalue=f"{what}: {output.get('evalue', '')}",
                        traceback=output.get("traceback", []),
                    )
                raise _RerunFailed(output=output)

    async def _stop_checker(self) -> None:
        launch = self._checker_launch
        if launch is not None and not launch.done():
            launch.cancel()
            with contextlib.suppress(BaseException):
                await launch
        elif launch is not None and not launch.cancelled():
            launch.exception()  # seen: a boot that failed unused is no stray warning
        if self._checker is not None:
            self._checker.stop_channels()
        with contextlib.suppress(Exception):  # the containment kills it with the worker anyway
            await self._checker_manager.shutdown_kernel(now=True)
        self._checker = self._checker_manager = self._checker_launch = None

    # --- the cap -----------------------------------------------------------------------------

    def _kept(self, outs: list[Any], cell_index: int) -> int:
        note = self._notes.get(cell_index)
        return sum(_size(o) for o in outs if o is not note)

    def _budget(self, outs: list[Any], cell_index: int) -> int:
        in_cell = self._kept(outs, cell_index)
        return min(
            self.cell_output_limit - in_cell,
            self.notebook_output_limit - self._kept_before - in_cell,
        )

    def output(
        self,
        outs: list[Any],
        msg: dict[str, Any],
        display_id: str | None,
        cell_index: int,
    ) -> Any:
        parent = msg["parent_header"].get("msg_id")
        if self.output_hook_stack[parent]:
            return super().output(outs, msg, display_id, cell_index)  # widgets: theirs
        try:
            candidate = output_from_msg(msg)  # type: ignore[no-untyped-call]
        except ValueError:
            return super().output(outs, msg, display_id, cell_index)
        if getattr(self, "clear_before_next_output", False):
            outs[:] = []
            self.clear_display_id_mapping(cell_index)
            self.clear_before_next_output = False
        size = _size(candidate)
        budget = self._budget(outs, cell_index)
        if size <= budget:
            return super().output(outs, msg, display_id, cell_index)
        kind = candidate.get("output_type")
        is_stderr = kind == "stream" and candidate.get("name") == "stderr"
        self._dropped[cell_index] = self._dropped.get(cell_index, 0) + size
        if kind == "stream" and budget > 0 and not is_stderr:
            msg = {**msg, "content": {**msg["content"], "text": _cut(candidate.text, budget)}}
            kept = super().output(outs, msg, display_id, cell_index)
            self._dropped[cell_index] -= budget
            self._add_note(outs, cell_index)
            return kept
        if kind in ("error", "execute_result") or (
            is_stderr and cell_index not in self._stderr_kept
        ):
            # Decides the grade: keep it, shortened.
            shortened = self._shorten(candidate)
            if is_stderr:
                self._stderr_kept.add(cell_index)
            self._add_note(outs, cell_index)
            outs.append(shortened)
            return shortened
        self._add_note(outs, cell_index)
        return None

    def _shorten(self, output: Any) -> Any:
        kind = output.get("output_type")
        if kind == "stream":
            output.text = _cut(output.text, KEPT_WHEN_OVER) + "\n[… cut …]\n"
        elif kind == "error":
            output.evalue = _cut(str(output.get("evalue", "")), KEPT_WHEN_OVER)
            lines = [_cut(line, KEPT_WHEN_OVER // 4) for line in output.get("traceback", [])]
            output.traceback = lines[:10] + (["[… traceback cut …]"] if len(lines) > 10 else [])
        elif kind == "execute_result":
            plain = output.get("data", {}).get("text/plain", "")
            output.data = {"text/plain": _cut(plain, KEPT_WHEN_OVER)}
        return output

    def _add_note(self, outs: list[Any], cell_index: int) -> None:
        if cell_index in self._notes:
            return
        note = NotebookNode(output_type="stream", name="stdout", text="")  # type: ignore[no-untyped-call]
        self._notes[cell_index] = note
        outs.append(note)
        self._write_note(cell_index)

    def _write_note(self, cell_index: int) -> None:
        note = self._notes[cell_index]
        limit = min(self.cell_output_limit, self.notebook_output_limit)
        note.text = (
            f"\n{CUT_MARK} {_human(self._dropped.get(cell_index, 0))} more "
            f"was not kept (the limit is {_human(limit)} per cell, "
            f"{_human(self.notebook_output_limit)} per notebook) …]\n"
        )

    def _finish_cell(self, cell: Any, cell_index: int) -> None:
        if cell_index in self._notes:
            self._write_note(cell_index)
        self._kept_before += self._kept(cell.get("outputs", []), cell_index)


class _RerunFailed(Exception):
    """A test failed (or could not run) in the grader's own kernel; ``output`` is its error."""

    def __init__(self, ename: str = "", evalue: str = "", output: Any = None) -> None:
        self.output = output or NotebookNode(  # type: ignore[no-untyped-call]
            output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
        )
        self.summary = f"{self.output.get('ename')}: {self.output.get('evalue')}"
        super().__init__(self.summary)


def _failed(outputs: list[Any]) -> bool:
    """What nbgrader scores 0: an error, or anything on stderr."""
    return any(
        o.get("output_type") == "error"
        or (o.get("output_type") == "stream" and o.get("name") == "stderr")
        for o in outputs
    )


async def _execute(client: Any, code: str, timeout: int | None) -> list[Any]:
    """Run code in a kernel, outside any cell; returns its outputs (a timeout is an error)."""
    outputs: list[Any] = []

    def keep(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("stream", "error", "execute_result", "display_data"):
            outputs.append(output_from_msg(msg))  # type: ignore[no-untyped-call]

    try:
        reply = await client.execute_interactive(
            code, store_history=False, allow_stdin=False, timeout=timeout, output_hook=keep
        )
    except TimeoutError:
        raise _RerunFailed("TimeoutError", f"no answer within {timeout} s") from None
    content = reply.get("content", {})
    shown = any(o.get("output_type") == "error" for o in outputs)
    if content.get("status") == "error" and not shown:  # an error the kernel did not show
        outputs.append(_RerunFailed(content.get("ename", ""), content.get("evalue", "")).output)
    return outputs
