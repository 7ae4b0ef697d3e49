"""The files a worker leaves in its submission's private course root, and what the grader reads
from them (light: no nbgrader import, so the grader's own modules load fast)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULT = "result.json"  # the scores, or the reason there are none
LOG = "grading.log"  # nbgrader's full log, the kernel's stderr, the grader's timings
PROGRESS = "progress.json"  # the cell running now
RERUNS = "reruns.jsonl"  # tests the grader's own kernel could not run (grader_kernel.py)


def progress(root: Path) -> dict[str, Any]:
    """The cell that was running last, as CappedExecute recorded it."""
    try:
        data = json.loads((root / PROGRESS).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def running_cell(root: Path) -> str | None:
    """``cell 7 (answer_stop)``: the cell that was running last, or None before the first."""
    now = progress(root)
    if not now:
        return None
    label = f"cell {now['cell']}"
    if now.get("grade_id"):
        label += f" ({now['grade_id']})"
    return label


def where(root: Path) -> str:
    cell = running_cell(root)
    return f"in {cell}" if cell else "before the first cell ran"
