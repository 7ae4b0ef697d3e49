"""The one way the helpers wait: a deadline, and ``poll`` for "try until it works or time is up".

Every wait in the course has a finite timeout, so a cell never hangs for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from ._errors import CourseError, WaitTimeout

T = TypeVar("T")


class Deadline:
    """A moment that a wait must not pass: ``Deadline(30)`` is 30 seconds from now."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining <= 0

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, but never past the deadline."""
        time.sleep(min(seconds, self.remaining))


def poll(
    attempt: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    retry_on: tuple[type[Exception], ...] = (),
    interval: float = 0.2,
    on_timeout: Callable[[Exception | None], CourseError] | None = None,
) -> T:
    """Call ``attempt`` until it returns something other than None, and return that.

    An error in ``retry_on`` counts as "not yet"; any other error ends the wait at once. When the
    time is up, raise ``on_timeout(last_error)``, or a WaitTimeout naming ``what``.
    """
    deadline = Deadline(timeout)
    last_error: Exception | None = None
    while True:
        try:
            result = attempt()
        except retry_on as error:
            last_error = error
        else:
            if result is not None:
                return result
        if deadline.expired:
            if on_timeout is not None:
                raise on_timeout(last_error)
            raise WaitTimeout(
                f"{what} did not happen within {timeout:g} s.",
                output=str(last_error) if last_error else None,
            )
        deadline.sleep(interval)
        interval = min(interval * 1.5, 2.0)  # back off, but keep checking every 2 s at least
