"""What the fork server loads once, so that every grading worker forked from it starts warm.

Importing nbgrader takes seconds, and the first feedback page a process renders costs more:
regular expressions compiled, syntax highlighters and the notebook schema's validator built.
Python keeps those in module-level caches, which a forked worker inherits. Rendering one small
notebook here fills them once instead of once per submission.
"""

from __future__ import annotations

import contextlib
from typing import Any

import nbformat
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

from . import worker  # noqa: F401  # nbgrader and the worker's code, imported once


def _feedback_exporter() -> Any:
    """The HTML exporter nbgrader's GenerateFeedback makes, with its configuration."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    converter = GenerateFeedback(coursedir=CourseDirectory())
    return converter.exporter_class(parent=converter, config=converter.config)


def warm_feedback() -> None:
    """Render a notebook of each kind of cell and output the way a feedback page is rendered."""
    grade = {"grade": True, "solution": False, "grade_id": "warm", "points": 1, "score": 1}
    failed = {"output_type": "error", "ename": "AssertionError", "evalue": "no", "traceback": []}
    printed = {"output_type": "stream", "name": "stdout", "text": "/tmp\n"}
    cells = [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# A *title*, `code`"},
        {
            "cell_type": "code",
            "id": "b",
            "metadata": {"nbgrader": grade},
            "source": "import os\nprint(os.getcwd())",
            "execution_count": 1,
            "outputs": [printed, failed],
        },
    ]
    language = {"name": "python", "pygments_lexer": "ipython3"}
    document = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"language_info": language}}
    notebook = nbformat.from_dict({**document, "cells": cells})  # type: ignore[no-untyped-call]
    nbformat.validate(notebook)
    nbgrader = {"score": 1, "max_score": 1, "late_penalty": 0, "notebook": "warm"}
    resources = {"nbgrader": nbgrader}
    styles = CSSHTMLHeaderPreprocessor()  # type: ignore[no-untyped-call]
    notebook, resources = styles(notebook, resources)
    _feedback_exporter().from_notebook_node(notebook, resources)


with contextlib.suppress(Exception):  # only a head start: a worker can render the page cold
    warm_feedback()
