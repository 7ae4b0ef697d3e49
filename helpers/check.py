"""Grading checks: each prints ✓ when it passes, or raises CheckFailed saying what was expected,
what was found, and where to look.

Your answers reach a check only as plain data (a string, a number, a list, a dict): anything else
fails with a message saying what type was expected.

>>> check.container_running("web", image="course/web:v1")   # doctest: +SKIP
✓ container 'web' is running (course/web:v1)
"""

from ._check import (
    answered,
    container_env,
    container_labels,
    container_running,
    container_stopped,
    deployment_ready,
    endpoints_are,
    equal,
    exec_ran,
    image_has,
    page_contains,
    plain,
    pod_ready,
    port_published,
)

__all__ = [
    "answered",
    "container_env",
    "container_labels",
    "container_running",
    "container_stopped",
    "deployment_ready",
    "endpoints_are",
    "equal",
    "exec_ran",
    "image_has",
    "page_contains",
    "plain",
    "pod_ready",
    "port_published",
]
