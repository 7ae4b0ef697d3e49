"""What a student's feedback page shows of the hidden tests: whether each passed and its message,
not its code. nbgrader's feedback shows the whole graded notebook, hidden tests included, so a
class could pass the hidden tests around; nbgrader_config.py adds this step to the feedback (take
it out there to show them)."""

from __future__ import annotations

from typing import Any

from nbgrader.preprocessors import ClearHiddenTests


class HideHiddenTests(ClearHiddenTests):  # type: ignore[misc]
    """Remove each hidden test region from the feedback, and cut the traceback of a cell that had
    one to its last line (a traceback quotes the code around the failing line)."""

    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> tuple[Any, Any]:
        had_hidden_tests = self.begin_test_delimeter in cell.source
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if had_hidden_tests:
            cell.source = cell.source.rstrip() + "\n# (hidden tests: their result is below)"
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
        return cell, resources
