"""nbgrader's settings for this course: solutions/ is the source, exercises/ the release."""

import sys
from pathlib import Path

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
# Every check bounds its own waits well below this, so a hung cell is the student's own.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading a class (`make grade`, helpers/_grading): each submission in a worker of its own, with
# a time limit for the whole notebook besides the per-cell timeout above, and output capped
# before it reaches the graded notebook and the feedback page.
c.ClassGrading.jobs = 0  # submissions at once; 0: one per core, fewer if memory is short
c.ClassGrading.submission_timeout = 900  # seconds for one submission, kernel start to feedback
c.ClassGrading.cell_output_limit = 256 * 1024  # bytes of output a cell keeps; a note marks a cut
c.ClassGrading.notebook_output_limit = 2 * 1024 * 1024  # bytes of output one notebook keeps
c.ClassGrading.memory_limit = 2 * 2**30  # bytes one submission may use; past it: "memory limit"
c.ClassGrading.pids_limit = 2048  # processes (and threads) one submission may have at once
c.ClassGrading.cleanup_timeout = 120  # seconds to wait, at the end, for students' namespaces to go

# Feedback shows each hidden test's result and message, not its code (remove HideHiddenTests
# to show the hidden tests to students).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

sys.path.insert(0, c.CourseDirectory.root)  # helpers/, wherever nbgrader runs from
from helpers._grading.hidden_tests import HideHiddenTests  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, HideHiddenTests]
