"""Answers as plain data, out of the student's kernel and into the grader's.

The names a test reads are printed by the student's kernel as one JSON line after ``MARK``
(``export_code``), exactly plain data: str, int, finite float, bool, None, lists, and dicts with
str keys (a ``str`` subclass that claims to equal anything is not a ``str``). The grader reads
that line as data (``parse_export``: whatever else the kernel prints, and whatever it claims, only
the names asked for, only plain values) and sets them in its own kernel (``import_code``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MARK = "course-answers@grader: "  # starts the line that carries the answers out of a kernel
HANDOVER_LIMIT = 8 * 1024 * 1024  # bytes of answers one test takes from the student's kernel


# Runs in the student's kernel: the names asked for, as exactly plain data, in one line.
_EXPORT = """
def plain(value, depth=0):
    kind = type(value)
    if value is None or kind in (str, int, bool):
        return True
    if kind is float:
        return value == value and value not in (float("inf"), float("-inf"))
    if depth > 100:
        return False
    if kind is list:
        return all(plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(k) is str and plain(v, depth + 1) for k, v in value.items())
    return False

def described(value):
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return kind.__module__ + "." + kind.__qualname__

values, missing, unplain, size = {}, [], {}, 0
for name in names:
    if name not in space:
        missing.append(name)
        continue
    value = space[name]
    try:
        ok = plain(value)
        text = json.dumps(value, allow_nan=False) if ok else ""
    except Exception:
        ok = False
    if not ok:
        unplain[name] = described(value)
    elif size + len(text) > limit:
        unplain[name] = "value too large to hand over"
    else:
        values[name] = value
        size += len(text)
print(mark + json.dumps({"values": values, "missing": missing, "unplain": unplain}))
"""


def export_code(names: list[str]) -> str:
    """Code for the student's kernel: prints the answers as one JSON line after MARK."""
    context = f"{{'names': {names!r}, 'mark': {MARK!r}, 'limit': {HANDOVER_LIMIT}}}"
    return (
        "(lambda space: __import__('builtins').exec("
        f"{_EXPORT!r}, {{**{context}, 'space': space, 'json': __import__('json'), "
        "'__builtins__': __import__('builtins')}))(globals())"
    )


@dataclass
class Exported:
    values: dict[str, Any]
    missing: list[str]
    unplain: dict[str, str]


def parse_export(outputs: list[dict[str, Any]], names: list[str]) -> Exported:
    """The answers from the student's kernel's output: only the names asked for, only plain
    data (a kernel may print anything)."""
    for output in outputs:
        if output.get("output_type") == "error":
            raise ValueError(
                f"the notebook's kernel could not hand over {', '.join(names)}: "
                f"{output.get('ename')}: {output.get('evalue')}"
            )
    printed = "".join(
        o.get("text", "")
        for o in outputs
        if o.get("output_type") == "stream" and o.get("name", "stdout") == "stdout"
    )
    for line in printed.split("\n"):
        if line.startswith(MARK):
            try:
                found = json.loads(line[len(MARK) :])
            except ValueError:
                continue
            if not isinstance(found, dict):
                continue
            values: dict[str, Any] = found.get("values") or {}
            unplain: dict[str, Any] = found.get("unplain") or {}
            if not isinstance(values, dict) or not isinstance(unplain, dict):
                continue
            kept = {n: values[n] for n in names if n in values and is_plain(values[n])}
            odd = {n: str(unplain[n]) for n in names if n in unplain and n not in kept}
            missing = [n for n in names if n not in kept and n not in odd]
            return Exported(kept, missing, odd)
    raise ValueError(f"the notebook's kernel did not hand over {', '.join(names)}")


def is_plain(value: Any, depth: int = 0) -> bool:
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


def not_plain_message(name: str, kind: str) -> str:
    """Why an answer the test reads did not reach the grader's kernel."""
    if kind in ("function", "builtin_function_or_method", "functools.partial", "method"):
        return (
            f"{name} is a {kind} the grader could not find the source of: it runs your "
            f"functions from their source, so define {name} with def in an answer cell above "
            "this test"
        )
    if kind == "value too large to hand over":
        return f"{name}: {kind}"
    return (
        f"{name}: expected plain data (a string, a number, a list or a dict), found a {kind}; "
        "the grader hands over plain data only"
    )


def import_code(values: Mapping[str, Any], missing: Sequence[str] = ()) -> str:
    """Code for the grader's kernel: sets the handed-over answers (a JSON string literal), and
    unsets those the student's kernel did not have."""
    code = f"globals().update(__import__('json').loads({json.dumps(dict(values))!r}))"
    for name in missing:
        code += f"\nglobals().pop({name!r}, None)"
    return code
