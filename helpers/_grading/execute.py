"""nbgrader's Execute preprocessor with output capped in bytes, per cell and per notebook, before
the output is kept: 50 MB of printing never reaches the graded notebook or the feedback page.

Where output is cut, a note says so (on stdout: nbgrader reads anything on stderr as a failed
test). What decides a test's score is never dropped: every error, a cell's first stderr output and
every result are kept, shortened if they are large, so the grade is the same as without the cap.

It also records which cell is running in a small file, so the grader can say where a submission
was when its time ran out or its kernel died, and runs the tests tagged ``run-by-grader`` in a
kernel of the grader's own instead of the student's (``grader_kernel.py``, ``rerun.py``): the answers they read handed
over as plain data, the student's functions they call run from source at arm's length
(``arm.py``), their outputs the cell's outputs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import output_from_msg
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Integer, Unicode

from .grader_kernel import GraderKernel, output_size

CUT_MARK = "[… output cut here by the grader:"
KEPT_WHEN_OVER = 2048  # bytes kept of a grade-deciding output once the budget is spent


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8", "replace")[: max(limit, 0)]
    return data.decode("utf-8", "ignore")


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class CappedExecute(GraderKernel, Execute):  # type: ignore[misc]  # nbgrader is untyped
    cell_output_limit = Integer(256 * 1024, help="Bytes of output one cell keeps.").tag(config=True)
    notebook_output_limit = Integer(2 * 1024 * 1024, help="Bytes one notebook keeps.").tag(
        config=True
    )
    progress_file = Unicode("", help="Where to write the running cell (JSON).").tag(config=True)
    reruns = Dict({}, help="rerun.plans() of the assignment: tests the grader runs.").tag(
        config=True
    )
    rerun_folder = Unicode("", help="The grader's kernel's own empty folder.").tag(config=True)
    rerun_env = Dict({}, help="Added to the grader's kernel's environment (the student).").tag(
        config=True
    )
    rerun_sandboxed = Bool(
        False, help="The grader's kernel must be in the sandbox (its setup checks it)."
    ).tag(config=True)
    rerun_record = Unicode(
        "", help="Where to add the tests the grader's kernel could not run (for the flag)."
    ).tag(config=True)
    handover_timeout = Integer(
        30, help="Seconds the student's kernel has to hand over the answers a test reads."
    ).tag(config=True)

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
            if self._grader_runs(cell):
                await self._run_by_grader(cell, cell_index)
                self._finish_cell(cell, cell_index)
                return cell
        result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        self._finish_cell(cell, cell_index)
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

    # --- the cap -----------------------------------------------------------------------------

    def _kept(self, outs: list[Any], cell_index: int) -> int:
        note = self._notes.get(cell_index)
        return sum(output_size(o) for o in outs if o is not note)

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
        size = output_size(candidate)
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
