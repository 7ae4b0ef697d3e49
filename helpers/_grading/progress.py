"""What a class run prints while it runs: one line per submission as it finishes, and a progress
bar (redrawn in place on a terminal; a plain ``[12/60]`` count on each line otherwise)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .outcome import Outcome


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total: int, jobs: int, out: TextIO | None = None) -> None:
        self.total = total
        self.jobs = max(1, jobs)
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.done = 0
        self.running = 0
        self.need_you = 0
        self.started = time.monotonic()
        self._bar_shown = False

    def _mark(self, ok: bool) -> str:
        mark = "✓" if ok else "✗"
        if self.tty:
            return f"\033[32m{mark}\033[0m" if ok else f"\033[31m{mark}\033[0m"
        return mark

    def bar(self) -> str:
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        elapsed = time.monotonic() - self.started
        text = (
            f"[{'█' * filled}{'░' * (width - filled)}] {self.done}/{self.total}"
            f" · {self.running} running · {self.need_you} need you · {_clock(elapsed)}"
        )
        if 0 < self.done < self.total:
            left = elapsed / self.done * (self.total - self.done)
            text += f" · about {_clock(left)} left"
        return text

    def _clear(self) -> None:
        if self.tty and self._bar_shown:
            self.out.write("\r\033[K")

    def refresh(self, running: int | None = None) -> None:
        if running is not None:
            self.running = running
        if self.tty:
            self._clear()
            self.out.write(self.bar())
            self.out.flush()
            self._bar_shown = True

    def finished(self, outcome: Outcome, running: int) -> None:
        self.done += 1
        self.running = running
        if outcome.needs_instructor():
            self.need_you += 1
        self._clear()
        count = "" if self.tty else f"[{self.done}/{self.total}] "
        self.out.write(f" {self._mark(not outcome.needs_instructor())} {count}{outcome.line()}\n")
        self._bar_shown = False
        self.refresh()

    def note(self, text: str) -> None:
        self._clear()
        self.out.write(f" • {text}\n")
        self._bar_shown = False
        self.refresh()

    def close(self) -> None:
        if self.tty and self._bar_shown:
            self.out.write("\r\033[K" + self.bar() + "\n")
            self.out.flush()
            self._bar_shown = False
        elif not self.tty:
            self.out.write(f" • {self.bar()}\n")
            self.out.flush()
