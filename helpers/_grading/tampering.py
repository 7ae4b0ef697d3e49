"""Answer cells that reach for the grading itself, flagged for the instructor.

The tests the grader runs in its own kernel (``rerun.py``) are out of reach of an answer cell;
what is left in the student's kernel is not, and an answer that tries (replaces a check
function, patches a builtin or ``sys.modules``, registers an IPython hook that rewrites the cells
that follow) says something about the submission. This scan finds it in the submitted code and
the grade is flagged (grades.csv's ``flags`` column, the feedback page) for a person to look at.

It reads the code as the kernel runs it (IPython's ``%`` and ``!`` lines turned into the calls
they stand for), it does not run it: it follows aliases (``from helpers import check as c``,
``c = helpers.check``, ``importlib.import_module("helpers.check")``), writes through ``vars()``,
``__dict__`` and ``globals()``, ``setattr`` and ``getattr`` on builtins; code built at run time
(``exec`` of a string) is flagged for the ``exec`` itself, and a cell that does not parse is
flagged because it could not be read.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Container, Iterable, Iterator
from typing import Any

# Names (and modules) whose attributes a notebook's answers have no business replacing.
GUARDED = {"check", "helpers", "k8s", "docker", "builtins", "__builtins__", "sys", "nbgrader"}
BUILTINS = ("builtins", "__builtins__")
GUARDED_MODULES = {"helpers", "builtins", "sys", "nbgrader", "IPython", "ipykernel"}
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
CALLS = {
    "exec": "runs code built at run time",
    "eval": "runs code built at run time",
    "compile": "compiles code built at run time",
}
MUTATORS = {"update", "setdefault", "__setitem__", "__delitem__", "pop", "popitem", "clear"}
# Magics that run the Python written after them in the kernel (scanned as such), and magics
# that run nothing (not flagged). Any other magic is flagged: it runs a shell, a file, or code.
PYTHON_MAGICS = {"time", "timeit", "capture", "prun"}
HARMLESS_MAGICS = {"matplotlib", "pinfo", "pinfo2", "psearch", "who", "whos", "who_ls", "pwd"}
SHELL = {"system", "sx", "bash", "sh", "script", "perl", "ruby", "sc"}


def _module_of(node: ast.AST) -> str | None:
    """The module a call imports by name (``importlib.import_module("x")``, ``__import__("x")``)."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name not in ("import_module", "__import__"):
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""


def _guarded_module(module: str) -> bool:
    return module.split(".")[0] in GUARDED_MODULES


def _root(node: ast.AST, guarded: Container[str]) -> str | None:
    """The guarded name an expression reaches into (``c.equal`` -> ``c``, ``vars(check)[x]``
    -> ``check``, ``getattr(helpers, "check")`` -> ``helpers``), or None."""
    while True:
        if isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
            node = node.value
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            module = _module_of(node)
            if module is not None:
                return module.split(".")[0] if module and _guarded_module(module) else None
            if name in ("getattr", "vars") and node.args:
                node = node.args[0]
            else:
                return None
        elif isinstance(node, ast.Name):
            return node.id if node.id in guarded else None
        else:
            return None


def aliases(trees: Iterable[ast.AST]) -> dict[str, str]:
    """The guarded names, and every name the answers bind to one of them (to fixpoint), each
    with the guarded name it stands for (``{"c": "check"}``)."""
    guarded = {name: name for name in GUARDED}
    trees = [inner for tree in trees for inner in _with_magic_bodies(tree)]
    while True:
        before = len(guarded)
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        if _guarded_module(alias.name):
                            top = alias.name.split(".")[0]
                            guarded.setdefault(alias.asname or top, alias.name)
                elif isinstance(node, ast.ImportFrom):
                    if node.module and _guarded_module(node.module):
                        for alias in node.names:
                            if alias.name != "*":
                                guarded.setdefault(alias.asname or alias.name, node.module)
                elif isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr):
                    value = node.value
                    root = _root(value, set(guarded)) if value is not None else None
                    if root:
                        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                        for target in targets:
                            if isinstance(target, ast.Name):
                                guarded.setdefault(target.id, guarded.get(root, root))
        if len(guarded) == before:
            return guarded


def _with_magic_bodies(tree: ast.AST) -> Iterator[ast.AST]:
    """The tree, and the Python run by the magics in it (``%%capture``'s cell, ``%time x``)."""
    from .sources import python_of

    yield tree
    for node in ast.walk(tree):
        magic = _magic(node) if isinstance(node, ast.Call) else None
        code = node.args[-1] if magic and node.args else None  # type: ignore[attr-defined]
        if magic and magic[1] in PYTHON_MAGICS and isinstance(code, ast.Constant):
            with contextlib.suppress(SyntaxError, ValueError):
                yield from _with_magic_bodies(ast.parse(python_of(str(code.value))))


def _magic(node: ast.Call) -> tuple[str, str] | None:
    """(kind, name) of an IPython call: ``!ls`` is ('system', ...), ``%run x`` ('run', ...)."""
    func = node.func
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr in ("system", "getoutput"):
        return func.attr, func.attr
    if func.attr in ("run_line_magic", "run_cell_magic") and node.args:
        first = node.args[0]
        name = first.value if isinstance(first, ast.Constant) else "?"
        return func.attr, str(name)
    return None


def _in_code(tree: ast.AST, guarded: dict[str, str]) -> Iterator[str]:
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = list(node.targets)
        for target in targets:
            if isinstance(target, ast.Attribute | ast.Subscript):
                root = _root(target, guarded)
                if root:
                    yield f"replaces {ast.unparse(target)}"
                elif _is_namespace(target):
                    yield f"writes {ast.unparse(target)} by name"
        if isinstance(node, ast.Call):
            yield from _in_call(node, guarded)
        if isinstance(node, ast.Attribute) and node.attr in HOOKS and node.attr != "events":
            yield HOOKS[node.attr]
        if (  # shell.events.register(...); k8s.events(...) is the course's own
            isinstance(node, ast.Attribute)
            and node.attr == "register"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "events"
        ):
            yield HOOKS["events"]
        if isinstance(node, ast.Attribute) and _builtin_call(node, guarded):
            yield CALLS[node.attr]
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if "ctypes" in names:
                yield "imports ctypes"


def _builtin_call(node: ast.Attribute, guarded: dict[str, str]) -> bool:
    """``builtins.exec``, ``__builtins__.eval`` (an alias of builtins too)."""
    return node.attr in CALLS and _is_builtins(_root(node.value, guarded), guarded)


def _is_builtins(root: str | None, guarded: dict[str, str]) -> bool:
    return root is not None and guarded.get(root, root) in BUILTINS


def _is_namespace(node: ast.AST) -> bool:
    """``globals()[...]``, ``vars()[...]``, ``locals()[...]``, ``x.__dict__[...]``."""
    value = getattr(node, "value", None)
    return value is not None and _is_globals(value)


def _is_globals(node: ast.AST) -> bool:
    """``globals()``, ``vars()``, ``locals()``, ``x.__dict__``: a namespace as a dict."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in ("globals", "vars", "locals") and not node.args
    return isinstance(node, ast.Attribute) and node.attr == "__dict__"


def _in_call(node: ast.Call, guarded: dict[str, str]) -> Iterator[str]:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else None
    if name in ("setattr", "delattr") and node.args and _root(node.args[0], guarded):
        yield f"{name} on {ast.unparse(node.args[0])}"
    elif name in CALLS:
        yield CALLS[name]
    elif name == "getattr" and node.args and _is_builtins(_root(node.args[0], guarded), guarded):
        yield "reaches builtins by name (getattr)"
    if isinstance(func, ast.Attribute) and func.attr in MUTATORS:
        mapping = func.value
        if _is_globals(mapping) or (
            (_is_dict_of(mapping) or isinstance(mapping, ast.Attribute)) and _root(mapping, guarded)
        ):
            yield f"writes {ast.unparse(mapping)} by name"
    if isinstance(func, ast.Attribute) and func.attr == "reload":
        yield "reloads a module"
    module = _module_of(node)
    if module == "":
        yield "imports a module named at run time"
    magic = _magic(node)
    if magic is not None:
        kind, magic_name = magic
        if kind in ("system", "getoutput"):
            yield f"runs a shell command ({ast.unparse(func)})"
        elif magic_name in SHELL:
            yield f"runs a shell command (%{magic_name})"
        elif magic_name in PYTHON_MAGICS:
            code = node.args[-1] if node.args else None
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                yield from _scan_source(code.value, guarded)
        elif magic_name not in HARMLESS_MAGICS:
            yield f"runs the magic %{magic_name}"


def _is_dict_of(node: ast.AST) -> bool:
    """``vars(x)`` or ``x.__dict__``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id == "vars" and bool(node.args)
    return isinstance(node, ast.Attribute) and node.attr == "__dict__"


def _scan_source(source: str, guarded: dict[str, str]) -> Iterator[str]:
    from .sources import python_of

    try:
        tree = ast.parse(python_of(source))
    except (SyntaxError, ValueError) as error:
        yield f"does not parse ({type(error).__name__}: {getattr(error, 'msg', error)}), so it could not be read"
        return
    yield from _in_code(tree, guarded)


def _answers(notebook: Any) -> list[tuple[str, str]]:
    """(grade_id, source) of each answer cell, and of each code cell the student added."""
    found = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if meta and not meta.get("solution"):
            continue  # the instructor's (nbgrader restores its source)
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        found.append((str(meta.get("grade_id") or "a cell without nbgrader metadata"), source))
    return found


def flags(notebook: Any) -> list[str]:
    """What the notebook's answer cells do to the grading, one line per finding, naming the
    cell (``answer_x: replaces check.equal``)."""
    from .sources import python_of

    cells = _answers(notebook)
    trees = []
    for _, source in cells:
        with contextlib.suppress(SyntaxError, ValueError):
            trees.append(ast.parse(python_of(source)))
    guarded = aliases(trees)
    found: list[str] = []
    for grade_id, source in cells:
        for finding in dict.fromkeys(_scan_source(source, guarded)):
            found.append(f"{grade_id}: {finding}")
    return found
