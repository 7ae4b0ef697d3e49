"""A live plot of CPU and memory for containers or pods, built from ipywidgets and matplotlib.

The plot is drawn with matplotlib and shown in an ``ipywidgets.Image``; a background thread takes
one sample a second while it runs. While nbgrader grades a notebook no thread is started: ``start``
takes a few samples in the foreground, so grading never leaves anything running.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure  # a bare Figure draws with Agg, whatever the backend

from ._identity import grading_mode
from ._output import Picture
from ._types import Usage

Sampler = Callable[[], Sequence[Usage]]


class Monitor:
    """CPU (% of one core) and memory (MiB) over time, one line per container or pod.

    >>> m = docker.monitor("web")    # doctest: +SKIP
    >>> m                            # shows the widget, already running
    >>> m.stop()                     # the last picture, as a still image
    """

    def __init__(
        self, sample: Sampler, *, title: str, interval: float = 1.0, window: float = 60.0
    ) -> None:
        self._sample = sample
        self.title = title
        self.interval = interval
        self.window = window
        self.history: list[tuple[float, list[Usage]]] = []
        self._started_at = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="640px"))
        self.status = widgets.Label("stopped")
        self.start_button = widgets.Button(description="Start", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.widget = widgets.VBox(
            [widgets.HBox([self.start_button, self.stop_button, self.status]), self.image]
        )

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def sample_once(self) -> list[Usage]:
        """Take one sample, add it to the history and redraw."""
        usages = list(self._sample())
        with self._lock:
            self.history.append((time.monotonic() - self._started_at, usages))
            cutoff = self.history[-1][0] - self.window
            self.history = [(t, u) for t, u in self.history if t >= cutoff]
        self.redraw()
        return usages

    def start(self, *, samples_when_grading: int = 3) -> Monitor:
        """Start sampling in the background (while grading: take a few samples, no thread)."""
        if self.running:
            return self
        if grading_mode():
            for _ in range(samples_when_grading):
                self.sample_once()
                time.sleep(self.interval)
            self.status.value = f"{len(self.history)} samples (grading: no background thread)"
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="course-monitor", daemon=True)
        self._thread.start()
        self.status.value = "running"
        return self

    def stop(self) -> Picture:
        """Stop sampling. Returns the last picture, so the cell that stops the monitor shows it
        as a still image (which a saved notebook keeps, unlike the live widget)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 10)
        self._thread = None
        self.status.value = f"stopped after {len(self.history)} samples"
        if not self.image.value:
            self.redraw()
        return Picture(bytes(self.image.value))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception as error:  # keep the notebook alive; show why sampling paused
                self.status.value = f"sampling failed: {error}"
            self._stop.wait(self.interval)

    def series(self, name: str, metric: str = "cpu_percent") -> list[tuple[float, float]]:
        """(seconds, value) points of one container or pod; metric is cpu_percent or memory_mib."""
        with self._lock:
            return [
                (t, float(getattr(u, metric)))
                for t, usages in self.history
                for u in usages
                if u.name == name
            ]

    def names(self) -> list[str]:
        with self._lock:
            return sorted({u.name for _, usages in self.history for u in usages})

    def redraw(self) -> None:
        figure = Figure(figsize=(8, 3.2), dpi=80)
        cpu_axes, memory_axes = figure.subplots(1, 2)
        for name in self.names():
            for axes, metric in ((cpu_axes, "cpu_percent"), (memory_axes, "memory_mib")):
                points = self.series(name, metric)
                axes.plot([t for t, _ in points], [v for _, v in points], marker=".", label=name)
        cpu_axes.set(title="CPU (% of one core)", xlabel="seconds", ylim=(0, None))
        memory_axes.set(title="memory (MiB)", xlabel="seconds", ylim=(0, None))
        if self.names():
            cpu_axes.legend(loc="upper left", fontsize="small")
        figure.suptitle(self.title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        self.image.value = buffer.getvalue()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Monitor {self.title!r}: {state}, {len(self.history)} samples>"


def live(sample: Sampler, *, title: str, **options: Any) -> Monitor:
    monitor = Monitor(sample, title=title, **options)
    monitor.sample_once()
    return monitor.start()
