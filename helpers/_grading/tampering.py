"""Answer cells that reach for the grading itself, flagged for the instructor.

The checks run in the student's own kernel, so an answer cell could replace a check function,
patch a builtin or ``sys.modules``, or register an IPython hook that rewrites the test cells
that follow. The sandbox cannot stop that; this scan finds it in the submitted code and the
grade is flagged (grades.csv's ``flags`` column, the feedback page) for a person to look at.
It reads the code, it does not run it: code built at run time (``exec`` of a string) is flagged
for the ``exec`` itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any

# Modules whose attributes a notebook's answers have no business replacing.
GUARDED = {"check", "helpers", "k8s", "docker", "builtins", "__builtins__", "sys", "nbgrader"}
# IPython's ways to rewrite or watch the cells that run after this one.
HOOKS = {
    "input_transformers_cleanup": "registers an input transformer",
    "input_transformers_post": "registers an input transformer",
    "ast_transformers": "registers an AST transformer",
    "events": "registers an IPython event hook",
    "set_custom_exc": "replaces the error handler",
    "register_magic_function": "registers a magic",
    "run_cell": "runs cells itself",
}
CALLS = {"exec": "runs code built at run time", "eval": "runs code built at run time"}


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _in_code(tree: ast.AST) -> Iterable[str]:
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = list(node.targets)
        for target in targets:
            root = _root_name(target)
            if isinstance(target, ast.Attribute | ast.Subscript) and root in GUARDED:
                yield f"replaces {ast.unparse(target)}"
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name in ("setattr", "delattr") and node.args:
                if _root_name(node.args[0]) in GUARDED:
                    yield f"{name} on {ast.unparse(node.args[0])}"
            elif name in CALLS:
                yield CALLS[name]
        if isinstance(node, ast.Attribute) and node.attr in HOOKS and node.attr != "events":
            yield HOOKS[node.attr]
        if (  # shell.events.register(...); k8s.events(...) is the course's own
            isinstance(node, ast.Attribute)
            and node.attr == "register"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "events"
        ):
            yield HOOKS["events"]
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if "builtins" in names or "ctypes" in names:
                yield f"imports {'ctypes' if 'ctypes' in names else 'builtins'}"


def flags(notebook: Any) -> list[str]:
    """What the notebook's answer cells do to the grading, one line per finding, naming the
    cell (``answer_x: replaces check.equal``)."""
    found: list[str] = []
    for cell in notebook.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") != "code" or not meta.get("solution"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        # IPython's own syntax (%magic, !shell) is not Python: read what is left.
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for finding in dict.fromkeys(_in_code(tree)):
            found.append(f"{meta.get('grade_id', '?')}: {finding}")
    return found
