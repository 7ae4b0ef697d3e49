"""Grading checks: each prints ✓ when it passes, or raises CheckFailed saying what was expected,
what was found, and where to look.

>>> check.container_running("web", image="course/web:v1")   # doctest: +SKIP
✓ container 'web' is running (course/web:v1)
"""

from ._check import (
    answered,
    container_env,
    container_labels,
    container_running,
    equal,
    image_has,
    page_contains,
    pod_ready,
    port_published,
)

__all__ = [
    "answered",
    "container_env",
    "container_labels",
    "container_running",
    "equal",
    "image_has",
    "page_contains",
    "pod_ready",
    "port_published",
]
