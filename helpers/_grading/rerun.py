"""Test cells the grader runs in a kernel of its own, instead of the student's.

The student's kernel is theirs: an answer cell can replace a check function, patch a builtin or
rewrite the cells that follow. So at autograde a test cell tagged ``run-by-grader`` in
``solutions/`` does not run there at all: the grader runs the instructor's source of that cell
in a second kernel (``execute.py``), where no answer cell ever ran: the same sandbox and
credentials, an empty folder of its own, set up by the notebook's ``course.grader_setup`` code
(notebook metadata). What that kernel says is the cell's output, and nbgrader scores it. A test
with side effects (it deletes a pod, rolls out an update) runs once. A student running the
notebook themselves, or nbgrader's Validate, runs every cell in their own kernel as before.

What the test reads comes from the submission (``handover``), by what last bound each name
before the test:

- an answer's value (or a value the notebook's setup cell made): handed over from the student's
  kernel as plain data (JSON: str, number, bool, list, dict, None, exactly those types), so an
  object that claims to equal anything arrives as what it is or not at all;
- a function the student defined (``def``, or a lambda given a name): re-created from the
  source of the submitted answer cells, never from the student's objects, and called at arm's
  length in a throwaway process of its own (``arm.py``), with the imports, classes, functions
  and plain data it reads;
- a function or import of the instructor's (a notebook cell that is the instructor's, word for
  word): run in the grader's kernel from the instructor's source;
- a name an earlier test set: it ran in the grader's kernel too, and is there.

The older tag ``rerun-by-grader`` counts as ``run-by-grader``.
"""

from __future__ import annotations

import ast
import builtins
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sources import (
    DATA,
    FUNCTION,
    GRADER,
    INSTRUCTOR,
    STUDENT,
    Binding,
    bindings,
    definitions_only,
    free_names,
    names_in,
    nbgrader_meta,
    source_of,
    text_of,
)

TAG = "run-by-grader"
TAGS = (TAG, "rerun-by-grader")
HEADER = (
    "\nThe grader ran this test in a kernel of its own, where no answer cell runs: your answers "
    "were handed over as plain data, your functions ran from their source in a process of their "
    "own. There it failed:\n"
)


def is_tagged(cell: Mapping[str, Any]) -> bool:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return any(tag in tags for tag in TAGS)


def plans(source_folder: Path) -> dict[str, dict[str, Any]]:
    """The tests the grader runs, by notebook name (without .ipynb), from the instructor's
    notebooks, as plain data (it travels in the grader's config): the setup, the tagged cells'
    sources, every test's source, and the sources of the instructor's other code cells."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(source_folder.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        setup = notebook.get("metadata", {}).get("course", {}).get("grader_setup")
        cells: dict[str, str] = {}
        tests: dict[str, str] = {}
        trusted: list[str] = []
        before: dict[str, int] = {}  # per test: how many of the trusted cells come before it
        for cell in notebook.get("cells", []):
            if cell.get("cell_type") != "code":
                continue
            meta = nbgrader_meta(cell)
            if meta.get("solution"):
                continue
            if meta.get("grade"):
                tests[meta["grade_id"]] = text_of(cell["source"])
                before[meta["grade_id"]] = len(trusted)
                if is_tagged(cell):
                    cells[meta["grade_id"]] = text_of(cell["source"])
            else:
                trusted.append(text_of(cell["source"]))
        if cells and setup:
            found[path.stem] = {
                "setup": text_of(setup),
                "cells": cells,
                "tests": tests,
                "trusted": trusted,
                "before": before,
            }
    return found


# --- the hand-over of one test ----------------------------------------------------------------


@dataclass
class Handover:
    """What one test needs in the grader's kernel, and where each part comes from."""

    data: list[str] = field(default_factory=list)  # from the student's kernel: must be plain
    needs: list[str] = field(default_factory=list)  # plain data the student's functions read
    trusted: list[str] = field(default_factory=list)  # instructor's definitions, run as they are
    functions: dict[str, str] = field(default_factory=dict)  # name -> the student's source
    program: list[dict[str, str]] = field(default_factory=list)  # for the function's process
    from_grader: list[str] = field(default_factory=list)  # plain values the grader's kernel has
    imports: str = ""  # the test's own imports, run in the student's kernel too

    def spec(self, setup: str, values: Mapping[str, Any], unplain: Mapping[str, str]) -> str:
        """What ``arm.install`` takes, as JSON."""
        program = {
            "setup": setup,
            "globals": {k: v for k, v in values.items() if k in self.needs or k in self.data},
            "statements": self.program,
            "unplain": dict(unplain),
        }
        return json.dumps(
            {"program": program, "functions": self.functions, "from_grader": self.from_grader}
        )


def _pinned(plan: Mapping[str, Any], grade_id: str | None) -> dict[str, Binding]:
    """The functions, classes and imports the instructor's own cells (not answers, not tests)
    define before the test ``grade_id``, from ``solutions/``: a test gets these, whatever the
    student's notebook holds or redefines."""
    trusted = list(plan.get("trusted") or [])
    count = (plan.get("before") or {}).get(grade_id, len(trusted))
    cells = [{"cell_type": "code", "metadata": {}, "source": s} for s in trusted[:count]]
    return {
        name: binding
        for name, binding in bindings(cells, {"trusted": trusted}).items()
        if binding.kind != DATA and binding.origin == INSTRUCTOR
    }


def handover(
    test: str,
    setup: str,
    cells: Sequence[Mapping[str, Any]],
    plan: Mapping[str, Any],
    grade_id: str | None = None,
) -> Handover:
    """What the test ``test`` (instructor's source, ``grade_id``) reads, sorted by where it comes
    from; ``cells``: the submitted notebook's cells before the test, as they ran."""
    found = bindings(cells, plan)
    pinned = _pinned(plan, grade_id)
    setup_names = names_in(ast.parse(setup))[1]
    result = Handover()
    program: dict[tuple[int, int], dict[str, str]] = {}
    trusted: dict[tuple[int, int], str] = {}
    seen: set[str] = set()  # by for_function
    sorted_out: set[str] = set()  # by for_test

    def outside(names: set[str]) -> list[str]:
        return sorted(names - setup_names - set(dir(builtins)))

    def for_function(name: str) -> None:
        """Add what the student's function ``name`` needs to its process's program."""
        if name in seen:
            return
        seen.add(name)
        binding = found.get(name)
        if binding is None:  # bound where the grader cannot read (exec): as data, if it is
            result.needs.append(name)
            return
        if binding.origin == GRADER:
            result.from_grader.append(name)
            return
        if binding.kind == DATA:
            result.needs.append(name)
            return
        kept = definitions_only(binding.statement)
        if kept is None:
            result.needs.append(name)
            return
        where = f"{binding.where}, as the grader runs it"
        program.setdefault(binding.order, {"code": ast.unparse(kept), "where": where})
        for needed in outside(free_names(ast.Module(body=[kept], type_ignores=[]))):
            for_function(needed)

    def for_test(name: str) -> None:
        """Sort a name the test (or an instructor's definition it uses) reads."""
        if name in sorted_out:
            return
        sorted_out.add(name)
        binding = found.get(name)
        if name in pinned and (binding is None or binding.origin != GRADER):
            binding = pinned[name]  # the instructor's helper: the student's cannot stand in
        if binding is None or binding.origin == GRADER:
            if binding is None:
                result.data.append(name)
            return
        if binding.kind == FUNCTION and binding.origin == STUDENT:
            result.functions[name] = source_of(binding)
            for_function(name)
            return
        kept = definitions_only(binding.statement)
        if binding.origin == INSTRUCTOR and binding.kind != DATA and kept is not None:
            trusted.setdefault(binding.order, ast.unparse(kept))
            for needed in outside(free_names(ast.Module(body=[kept], type_ignores=[]))):
                for_test(needed)
            return
        result.data.append(name)

    test_tree = ast.parse(test)
    for name in outside(free_names(test_tree)):
        for_test(name)
    result.program = [program[key] for key in sorted(program)]
    result.trusted = [trusted[key] for key in sorted(trusted)]
    result.data = sorted(set(result.data))
    result.needs = sorted(set(result.needs) - set(result.data))
    result.imports = "\n".join(
        ast.unparse(stmt)
        for stmt in test_tree.body
        if isinstance(stmt, ast.Import | ast.ImportFrom)
    )
    return result
