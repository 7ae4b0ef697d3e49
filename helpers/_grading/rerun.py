"""Test cells the grader runs again in a kernel of its own.

The tests run in the student's kernel, where an answer cell can replace a check function, patch
a builtin or rewrite the cells that follow. ``tampering.py`` flags what it can read in the code;
this module takes the checks out of reach where they read the engine and the cluster.

The instructor tags a test cell ``rerun-by-grader`` in ``solutions/`` (a test that only reads
state, or compares plain answers). Once it has passed in the student's kernel, the grader runs
the instructor's source of that cell a second time, at once, in a second kernel where no answer
ever ran: the same sandbox and credentials, an empty folder of its own, set up by the
notebook's ``course.grader_setup`` code (notebook metadata). The answers the cell reads are
handed over as plain data (JSON), so an answer object that claims to equal anything arrives as
what it is or not at all. If the test fails there, the cell fails: the error is added to its
output (nbgrader scores it 0, the feedback page shows why) and the grade is flagged.
"""

from __future__ import annotations

import ast
import builtins
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAG = "rerun-by-grader"
MARK = "course-answers@grader: "  # starts the line that carries the answers out of a kernel
HEADER = (
    "\nThe grader ran this test again in a kernel of its own (where no answer cell ran), "
    "and there it failed:\n"
)


@dataclass
class Plan:
    """One notebook's reruns: the second kernel's setup, and the tagged cells' sources."""

    setup: str
    cells: dict[str, str] = field(default_factory=dict)  # grade_id -> instructor's source


def plans(source_folder: Path) -> dict[str, dict[str, Any]]:
    """The reruns of an assignment, by notebook name (without .ipynb), from the instructor's
    notebooks: plain data, to travel in the grader's config."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(source_folder.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        setup = notebook.get("metadata", {}).get("course", {}).get("grader_setup")
        cells = {
            cell["metadata"]["nbgrader"]["grade_id"]: _text(cell["source"])
            for cell in notebook.get("cells", [])
            if TAG in cell.get("metadata", {}).get("tags", [])
            and cell.get("metadata", {}).get("nbgrader", {}).get("grade")
        }
        if cells and setup:
            found[path.stem] = {"setup": _text(setup), "cells": cells}
    return found


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def _names(source: str) -> tuple[set[str], set[str]]:
    """The names a cell reads, and the names it sets (assignments, imports, defs, arguments)."""
    read: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read, bound


def answers_read(cell: str, setup: str) -> list[str]:
    """The names a rerun cell reads that neither it nor the setup sets: the student's answers
    (or earlier test cells' values), handed over from the student's kernel."""
    read, bound = _names(cell)
    return sorted(read - bound - _names(setup)[1] - set(dir(builtins)))


def export_code(names: list[str]) -> str:
    """Code for the student's kernel: prints the answers as one JSON line after MARK."""
    values = ", ".join(f"{name!r}: {name}" for name in names)
    return f"print({MARK!r} + __import__('json').dumps({{{values}}}, allow_nan=False))"


def parse_export(outputs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """The answers from the student's kernel's output; only the names asked for."""
    for output in outputs:
        if output.get("output_type") == "error":
            raise ValueError(
                f"{', '.join(names)} could not be handed over as plain data (str, number, "
                f"bool, list, dict, None): {output.get('ename')}: {output.get('evalue')}"
            )
        text = output.get("text", "") if output.get("output_type") == "stream" else ""
        for line in text.split("\n"):
            if line.startswith(MARK):
                values = json.loads(line[len(MARK) :])
                if isinstance(values, dict) and set(names) <= set(values):
                    return {name: values[name] for name in names}
    raise ValueError(f"the notebook's kernel did not hand over {', '.join(names)}")


def import_code(values: dict[str, Any]) -> str:
    """Code for the grader's kernel: sets the handed-over answers (a JSON string literal)."""
    return f"globals().update(__import__('json').loads({json.dumps(values)!r}))"
