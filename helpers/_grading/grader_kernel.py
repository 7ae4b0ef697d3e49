"""The grader's own kernel: the tests tagged ``run-by-grader`` run there, not in the student's.

``CappedExecute`` (``execute.py``) runs a submission's cells in the student's kernel as nbgrader
does, except a tagged test cell: for it (``_run_by_grader``) the student's kernel only hands over
the answers the test reads as plain data (``answers.py``); the grader's kernel, started at the
notebook's first cell (it boots while the student's cells run) and set up once by the notebook's
``course.grader_setup``, runs the instructor's definitions the test uses, sets the answers, binds
the student's functions to proxies that call them at arm's length (``arm.py``), and runs the
instructor's source of the test. Its messages become the cell's outputs, as nbclient makes them of
the student's kernel's, through the same output cap. A test the grader's kernel could not run for
a reason of its own (it did not start, its setup failed) is recorded for the flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from nbformat.notebooknode import NotebookNode
from nbformat.v4 import output_from_msg

from . import answers, rerun


def output_size(output: Any) -> int:
    if output.get("output_type") == "stream":
        return len(output.get("text", "").encode("utf-8", "replace"))
    return len(json.dumps(output, default=str).encode())


class GraderKernel:
    """What ``CappedExecute`` does with the grader's kernel (its traits are declared there)."""

    # nbclient's and CappedExecute's, for the type checker.
    timeout: int | None
    startup_timeout: int
    extra_arguments: list[str]
    reruns: dict[str, Any]
    rerun_folder: str
    rerun_env: dict[str, str]
    rerun_sandboxed: bool
    rerun_record: str
    handover_timeout: int
    kc: Any
    km: Any
    nb: Any
    log: Any
    config: Any
    kernel_manager_class: Any
    clear_before_next_output: bool
    _notebook_name: str
    _checker: Any
    _checker_manager: Any
    _checker_launch: Any
    _checker_problem: str | None

    process_message: Any  # nbclient's

    def _plan(self) -> dict[str, Any]:
        return dict(self.reruns.get(getattr(self, "_notebook_name", ""), {}))

    def _grader_runs(self, cell: Any) -> bool:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade") or meta.get("solution"):
            return False
        return meta.get("grade_id") in self._plan().get("cells", {})

    async def _run_by_grader(self, cell: Any, cell_index: int) -> None:
        """The test's outputs are what the instructor's source of it says in the grader's
        kernel; the student's kernel only hands over the answers it reads."""
        plan = self._plan()
        grade_id = cell["metadata"]["nbgrader"]["grade_id"]
        source = plan["cells"][grade_id]
        cell.outputs = []
        cell.execution_count = None
        self.clear_before_next_output = False
        started = time.monotonic()
        installed: list[str] = []
        try:
            before = self.nb.cells[:cell_index]
            hand = rerun.handover(source, plan["setup"], before, plan, grade_id)
            if hand.imports:  # what the test imports, later cells of the student may use
                with contextlib.suppress(_RerunFailed):
                    await _execute(self.kc, hand.imports, self.handover_timeout)
            exported = await self._export(hand.data + hand.needs)
            odd = {n: k for n, k in exported.unplain.items() if n in hand.data}
            if odd:
                message = "; ".join(answers.not_plain_message(n, k) for n, k in odd.items())
                raise _RerunFailed("CheckFailed", message)
            await self._start_checker(plan["setup"])
            if hand.trusted:
                await self._in_checker("\n".join(hand.trusted), "the notebook's definitions")
            values = {n: v for n, v in exported.values.items() if n in hand.data}
            missing = [n for n in hand.data if n in exported.missing]
            await self._in_checker(answers.import_code(values, missing), "the handed-over answers")
            if hand.functions:
                installed = list(hand.functions)
                unplain = {n: k for n, k in exported.unplain.items() if n in hand.needs}
                spec = hand.spec(plan["setup"], exported.values, unplain)
                code = f"__import__('helpers._grading.arm', fromlist=['arm']).install(globals(), {spec!r})"
                await self._in_checker(code, "setting up your functions")
            await self._test_in_checker(source, cell, cell_index)
        except _RerunFailed as failure:
            cell.outputs.append(failure.output)
            if failure.grader_side and self.rerun_record:
                line = json.dumps({"grade_id": grade_id, "error": failure.summary})
                with open(self.rerun_record, "a") as record:
                    record.write(line + "\n")
        finally:
            if installed and self._checker is not None:
                with contextlib.suppress(_RerunFailed):
                    await _execute(self._checker, _CLOSE.format(names=installed), 30)
        passed = not _failed(cell.outputs)
        if not passed:  # said right before what failed
            note = NotebookNode(output_type="stream", name="stdout", text=rerun.HEADER)  # type: ignore[no-untyped-call]
            first = next(i for i, o in enumerate(cell.outputs) if _failed([o]))
            cell.outputs.insert(first, note)
        self.log.info(
            "%s: run by the grader, %s in %.1f s",
            grade_id,
            "passed" if passed else "failed",
            time.monotonic() - started,
        )

    async def _test_in_checker(self, source: str, cell: Any, cell_index: int) -> None:
        """Run the test in the grader's kernel; its messages become the cell's outputs, as
        nbclient makes them of the student's."""
        kept = ("stream", "error", "execute_result", "display_data", "update_display_data")

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] in (*kept, "clear_output"):
                self.process_message(msg, cell, cell_index)

        try:
            reply = await self._checker.execute_interactive(
                source,
                store_history=True,
                allow_stdin=False,
                timeout=self.timeout,
                output_hook=hook,
            )
        except TimeoutError:
            await self._stop_running_checker()
            raise _RerunFailed(
                "CellTimeoutError", f"the test ran past the {self.timeout} s cell limit"
            ) from None
        content = reply.get("content", {})
        shown = any(o.get("output_type") == "error" for o in cell.outputs)
        if content.get("status") == "error" and not shown:
            raise _RerunFailed(content.get("ename", "Error"), content.get("evalue", ""))

    async def _stop_running_checker(self) -> None:
        """After a test ran past its limit: interrupt it; a kernel that does not stop is shut
        down (the tests after it fail, saying so, and the grade is flagged)."""
        with contextlib.suppress(Exception):
            await self._checker_manager.interrupt_kernel()
        try:
            await _execute(self._checker, "pass", 20)
        except _RerunFailed:
            self._checker_problem = "the grader's kernel did not stop after a test ran too long"
            await self._stop_checker()

    async def _export(self, names: list[str]) -> answers.Exported:
        """The answers the test reads, from the student's kernel, as plain data."""
        if not names:
            return answers.Exported({}, [], {})
        code = answers.export_code(names)
        try:
            limit = 2 * answers.HANDOVER_LIMIT
            outputs = await _execute(self.kc, code, self.handover_timeout, limit)
        except _RerunFailed as failure:
            with contextlib.suppress(Exception):
                await self.km.interrupt_kernel()
            raise _RerunFailed(
                "AnswersNotHandedOver", f"the notebook's kernel did not answer: {failure.summary}"
            ) from None
        try:
            return answers.parse_export(outputs, names)
        except ValueError as error:
            raise _RerunFailed("AnswersNotHandedOver", str(error)) from None

    def _launch_checker(self) -> None:
        """Start the grader's kernel in the background, at the notebook's first cell: it boots
        while the student's cells run. Its setup runs later, at the first rerun."""
        if self._checker_launch is None and self._checker_problem is None:
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
            raise _RerunFailed("GraderKernelNotReady", self._checker_problem, grader_side=True)
        if self._checker is not None:
            return
        self._launch_checker()
        try:
            self._checker = await self._checker_launch
        except Exception as error:
            self._checker_problem = (
                f"the grader's kernel did not start: {type(error).__name__}: {error}"
            )
            raise _RerunFailed(
                "GraderKernelNotReady", self._checker_problem, grader_side=True
            ) from None
        try:
            first = _HARDEN + (_IN_SANDBOX if self.rerun_sandboxed else "")
            await self._in_checker(first + setup, "the grader's setup")
        except _RerunFailed as failure:
            self._checker_problem = f"the grader's kernel could not be set up: {failure.summary}"
            failure.grader_side = True
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


_HARDEN = "__import__('helpers._grading.arm', fromlist=['arm']).harden()\n"
# A run in the sandbox whose grader's kernel is not in it (its environment would be the worker's)
# stops at its setup: the grade is flagged, never given by an unconfined kernel.
_IN_SANDBOX = (
    "assert __import__('os').environ.get('COURSE_SANDBOX') == '1', "
    "'the grader\\'s kernel is not in the sandbox'\n"
)
_CLOSE = (
    "__import__('helpers._grading.arm', fromlist=['arm']).close_all()\n"
    "for __name in {names!r}:\n    globals().pop(__name, None)\ndel __name"
)


class _RerunFailed(Exception):
    """A test failed (or could not run) in the grader's own kernel; ``output`` is its error.
    ``grader_side``: the grader's kernel itself could not run it (not the student's doing)."""

    def __init__(
        self, ename: str = "", evalue: str = "", output: Any = None, grader_side: bool = False
    ) -> None:
        self.output = output or NotebookNode(  # type: ignore[no-untyped-call]
            output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
        )
        self.summary = f"{self.output.get('ename')}: {self.output.get('evalue')}"
        self.grader_side = grader_side
        super().__init__(self.summary)


def _failed(outputs: list[Any]) -> bool:
    """What nbgrader scores 0: an error, or anything on stderr."""
    return any(
        o.get("output_type") == "error"
        or (o.get("output_type") == "stream" and o.get("name") == "stderr")
        for o in outputs
    )


async def _execute(
    client: Any, code: str, timeout: int | None, limit: int = 1024 * 1024
) -> list[Any]:
    """Run code in a kernel, outside any cell; returns its outputs, the first ``limit`` bytes
    of them and every error (a timeout is an error)."""
    outputs: list[Any] = []
    size = [0]

    def keep(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("stream", "error", "execute_result", "display_data"):
            output = output_from_msg(msg)  # type: ignore[no-untyped-call]
            size[0] += output_size(output)
            if size[0] <= limit or output.get("output_type") == "error":
                outputs.append(output)

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
