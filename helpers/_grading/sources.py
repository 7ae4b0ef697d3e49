"""What binds each name in a notebook's cells, read from their source (not run).

``rerun.handover`` asks, for each name a test reads, what last bound it before the test: a
function the student wrote (re-created from this source for ``arm.py``), an instructor's
definition, an import, or a value (handed over as plain data, ``answers.py``). Cells are read as
the kernel runs them: IPython's ``%`` and ``!`` syntax turned into the Python it stands for.
A definition inside ``if``/``try`` keeps its condition; one in a loop or a ``with`` is not run
again (its value is handed over, if it is data).
"""

from __future__ import annotations

import ast
import builtins
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def text_of(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def nbgrader_meta(cell: Mapping[str, Any]) -> dict[str, Any]:
    return dict((cell.get("metadata") or {}).get("nbgrader") or {})


def python_of(source: str) -> str:
    """A cell's source as the kernel runs it: IPython's syntax (``%magic``, ``!shell``) turned
    into the Python it stands for."""
    from IPython.core.inputtransformer2 import TransformerManager

    return str(TransformerManager().transform_cell(source))  # type: ignore[no-untyped-call]


def parse(source: str) -> tuple[str, ast.Module] | None:
    """The Python of a cell and its tree; None if it does not parse (it raised SyntaxError in
    the kernel too, and bound nothing)."""
    try:
        text = python_of(source)
        return text, ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def names_in(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The names a piece of code reads, and the names it sets anywhere (assignments, imports,
    defs, arguments): what it reads and does not set is what it needs from outside."""
    read: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return read, bound


def free_names(code: str | ast.AST) -> set[str]:
    tree = ast.parse(code) if isinstance(code, str) else code
    read, bound = names_in(tree)
    return read - bound - set(dir(builtins))


# --- what binds a name ------------------------------------------------------------------------

FUNCTION, CLASS, IMPORT, DATA = "function", "class", "import", "data"
STUDENT, INSTRUCTOR, GRADER = "student", "instructor", "grader"
COMPOUND = (ast.If, ast.Try, ast.TryStar)  # kept, filtered, around a definition


def _target_names(target: ast.AST) -> Iterator[str]:
    for node in ast.walk(target):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            yield node.id


def _walrus_names(node: ast.AST) -> Iterator[str]:
    """Names set by ``:=`` in a statement's expressions (not inside its functions)."""
    stack = [node]
    while stack:
        current = stack.pop()
        for child in ast.iter_child_nodes(current):
            if isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
            ):
                continue
            if isinstance(child, ast.NamedExpr) and isinstance(child.target, ast.Name):
                yield child.target.id
            if not isinstance(child, ast.stmt):
                stack.append(child)


def _bindings(stmt: ast.stmt, functions: set[str]) -> Iterator[tuple[str, str, ast.AST]]:
    """(name, kind, node) for each module-level name a statement binds, in order. ``functions``:
    the names bound to functions so far (``f = g`` makes f one if g is)."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
        yield stmt.name, FUNCTION, stmt
    elif isinstance(stmt, ast.ClassDef):
        yield stmt.name, CLASS, stmt
    elif isinstance(stmt, ast.Import | ast.ImportFrom):
        for alias in stmt.names:
            if alias.name != "*":
                yield (alias.asname or alias.name).split(".")[0], IMPORT, stmt
    elif isinstance(stmt, ast.Assign | ast.AnnAssign):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        value = stmt.value
        for name in _walrus_names(stmt):
            yield name, DATA, stmt
        for target in targets:
            named = isinstance(value, ast.Lambda) or (
                isinstance(value, ast.Name) and value.id in functions
            )
            if isinstance(target, ast.Name) and named:
                yield target.id, FUNCTION, stmt
            else:
                for name in _target_names(target):
                    yield name, DATA, stmt
    else:
        for name in _walrus_names(stmt):
            yield name, DATA, stmt
        if isinstance(stmt, ast.AugAssign | ast.Delete):
            targets = [stmt.target] if isinstance(stmt, ast.AugAssign) else stmt.targets
            for target in targets:
                for name in _target_names(target):
                    yield name, DATA, stmt
        if isinstance(stmt, ast.For | ast.AsyncFor):
            for name in _target_names(stmt.target):
                yield name, DATA, stmt
        if isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                if item.optional_vars is not None:
                    for name in _target_names(item.optional_vars):
                        yield name, DATA, stmt
        if isinstance(stmt, ast.Try | ast.TryStar):
            for handler in stmt.handlers:
                if handler.name:
                    yield handler.name, DATA, stmt
        if isinstance(stmt, ast.Match):
            for case in stmt.cases:
                for node in ast.walk(case.pattern):
                    captured = getattr(node, "name", None)
                    if isinstance(captured, str):
                        yield captured, DATA, stmt
        for body in _bodies(stmt):
            for inner in body:
                for name, kind, node in _bindings(inner, functions):
                    # A definition inside if/try keeps its condition; in a loop or a with, the
                    # grader does not run it again: its value is handed over, if it is data.
                    keep = isinstance(stmt, COMPOUND) and kind != DATA
                    yield name, (kind if keep else DATA), node


def _bodies(stmt: ast.stmt) -> list[list[ast.stmt]]:
    bodies = [getattr(stmt, key, None) for key in ("body", "orelse", "finalbody")]
    found = [b for b in bodies if isinstance(b, list) and b and isinstance(b[0], ast.stmt)]
    for handler in getattr(stmt, "handlers", None) or []:
        found.append(handler.body)
    for case in getattr(stmt, "cases", None) or []:
        found.append(case.body)
    return found


def definitions_only(stmt: ast.stmt) -> ast.stmt | None:
    """The statement with only what defines things (functions, classes, imports, named
    lambdas) kept, inside the if/try around them; None if nothing is left."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return stmt
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return stmt
    if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Lambda | ast.Name):
        return stmt
    if isinstance(stmt, ast.If):
        body, orelse = _kept(stmt.body), _kept(stmt.orelse)
        if not body and not orelse:
            return None
        return ast.If(test=stmt.test, body=body or [ast.Pass()], orelse=orelse)
    if isinstance(stmt, ast.Try | ast.TryStar):
        handlers = [
            ast.ExceptHandler(type=h.type, name=h.name, body=_kept(h.body) or [ast.Pass()])
            for h in stmt.handlers
        ]
        body, orelse, final = _kept(stmt.body), _kept(stmt.orelse), _kept(stmt.finalbody)
        if not body and not orelse and not final and all(h.body == [ast.Pass()] for h in handlers):
            return None
        kind = type(stmt)
        return kind(
            body=body or [ast.Pass()],
            handlers=handlers or [ast.ExceptHandler(type=None, name=None, body=[ast.Raise()])],
            orelse=orelse,
            finalbody=final,
        )
    return None


def _kept(body: list[ast.stmt]) -> list[ast.stmt]:
    return [kept for stmt in body if (kept := definitions_only(stmt)) is not None]


@dataclass
class Binding:
    """What last bound a name before the test."""

    kind: str  # FUNCTION, CLASS, IMPORT, DATA
    origin: str  # STUDENT (an answer cell, or any cell not the instructor's), INSTRUCTOR, GRADER
    statement: ast.stmt  # the top-level statement that binds it
    node: ast.AST  # the def (or the assignment) itself
    text: str  # the Python of its cell
    where: str  # the cell's name, for messages
    order: tuple[int, int]  # (cell, statement): where it stands in the notebook


def _origin(cell: Mapping[str, Any], plan: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(origin, source, where) of a notebook cell that ran before the test; None for cells
    that are not code. A cell counts as the instructor's only if it is theirs word for word."""
    if cell.get("cell_type") != "code":
        return None
    meta = nbgrader_meta(cell)
    grade_id = str(meta.get("grade_id") or "")
    tests = plan.get("tests") or {}
    if meta.get("grade") and not meta.get("solution") and grade_id in tests:
        if grade_id in (plan.get("cells") or {}):
            return GRADER, plan["cells"][grade_id], grade_id
        return INSTRUCTOR, tests[grade_id], grade_id
    source = text_of(cell.get("source", ""))
    if not meta.get("solution") and source in (plan.get("trusted") or []):
        return INSTRUCTOR, source, "the notebook's setup"
    return STUDENT, source, grade_id or "a cell you added"


def bindings(cells: Sequence[Mapping[str, Any]], plan: Mapping[str, Any]) -> dict[str, Binding]:
    """The last binding of each module-level name in ``cells`` (those before the test)."""
    found: dict[str, Binding] = {}
    for index, cell in enumerate(cells):
        origin = _origin(cell, plan)
        if origin is None:
            continue
        kind_of_cell, source, where = origin
        parsed = parse(source)
        if parsed is None:
            continue
        text, tree = parsed
        for number, stmt in enumerate(tree.body):
            functions = {name for name, b in found.items() if b.kind == FUNCTION}
            for name, kind, node in _bindings(stmt, functions):
                found[name] = Binding(kind, kind_of_cell, stmt, node, text, where, (index, number))
                if kind == FUNCTION:
                    functions.add(name)
    return found


def source_of(binding: Binding) -> str:
    """The student's source of a function (with its decorators), as ``inspect.getsource``
    would give it in their kernel."""
    node = binding.node
    lines = binding.text.splitlines(keepends=True)
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])  # type: ignore[attr-defined]
    last = getattr(node, "end_lineno", None) or first
    return textwrap.dedent("".join(lines[first - 1 : last]))
