"""Instructor tooling around nbgrader: release the exercises, grade a class, feedback, grades.csv.

Used by ``make exercises`` and ``make grade`` (through ``python -m helpers``) and by the tests,
which run the same functions on a copy of the course in a temporary folder.

- ``course``: nbgrader's config and API; ``release``; one submission with nbgrader itself
  (``autograde``, ``scores``, ``feedback``).
- ``run``: a class run (``grade``): intake, scheduling, records. ``runner``: one submission in its
  own worker process (``worker``) and containment (``containment``). ``intake``: what was handed
  in and the checks that need no kernel. ``gradebook``: the gradebook, state, grades.csv.
  ``regrade``: what a run grades again, and what it reports (read back from the gradebook).
- ``rerun``: the tests the grader runs in its own kernel instead of the student's
  (``grader_kernel``), answers handed over as plain data (``answers``), the student's functions
  re-created from source (``sources``) and called at arm's length (``arm``); ``tampering``: the
  flags for answers that reach for the grading.
"""

from .course import REPO_ROOT, assignments, autograde, feedback, release, scores
from .gradebook import export_csv, read_csv
from .outcome import Outcome
from .run import ClassRun, grade

__all__ = [
    "REPO_ROOT",
    "ClassRun",
    "Outcome",
    "assignments",
    "autograde",
    "export_csv",
    "feedback",
    "grade",
    "read_csv",
    "release",
    "scores",
]
