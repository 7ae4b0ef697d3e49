"""A live plot of CPU and memory for containers or pods (``docker.monitor``, ``k8s.monitor``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._live import Live, show
from ._types import Usage

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Sampler = Callable[[], Sequence[Usage]]


class Monitor(Live):
    """CPU (% of one core) and memory (MiB) over time, one line per container or pod.

    ``cpu_lines`` draws dashed reference lines on the CPU plot, e.g. a pod's request and limit:
    ``{"limit of web": 50.0}``.

    >>> m = docker.monitor("web")    # doctest: +SKIP
    >>> m                            # shows the widget, already running
    >>> m.stop()                     # the last picture, as a still image
    """

    def __init__(
        self,
        sample: Sampler,
        *,
        title: str,
        interval: float = 1.0,
        window: float = 60.0,
        cpu_lines: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(title=title, interval=interval)
        self._sample = sample
        self.window = window
        self.cpu_lines = dict(cpu_lines or {})
        self.history: list[tuple[float, list[Usage]]] = []

    def update(self) -> None:
        usages = list(self._sample())
        with self.lock:
            self.history.append((self.elapsed(), usages))
            cutoff = self.history[-1][0] - self.window
            self.history = [(t, u) for t, u in self.history if t >= cutoff]

    def sample_once(self) -> list[Usage]:
        """Take one sample, add it to the history and redraw."""
        self.step()
        return self.history[-1][1]

    def series(self, name: str, metric: str = "cpu_percent") -> list[tuple[float, float]]:
        """(seconds, value) points of one container or pod; metric is cpu_percent or memory_mib."""
        with self.lock:
            return self._series(name, metric)

    def _series(self, name: str, metric: str) -> list[tuple[float, float]]:
        return [
            (t, float(getattr(u, metric)))
            for t, usages in self.history
            for u in usages
            if u.name == name
        ]

    def names(self) -> list[str]:
        with self.lock:
            return self._names()

    def _names(self) -> list[str]:
        return sorted({u.name for _, usages in self.history for u in usages})

    def draw(self, figure: Figure) -> None:
        cpu_axes, memory_axes = figure.subplots(1, 2)
        for name in self._names():
            for axes, metric in ((cpu_axes, "cpu_percent"), (memory_axes, "memory_mib")):
                points = self._series(name, metric)
                axes.plot([t for t, _ in points], [v for _, v in points], marker=".", label=name)
        for label, value in self.cpu_lines.items():
            cpu_axes.axhline(value, linestyle="--", linewidth=1, color="#888888")
            cpu_axes.annotate(
                label, (0, value), xytext=(2, 2), textcoords="offset points", fontsize=7
            )
        cpu_axes.set(title="CPU (% of one core)", xlabel="seconds", ylim=(0, None))
        memory_axes.set(title="memory (MiB)", xlabel="seconds", ylim=(0, None))
        if self._names():
            cpu_axes.legend(loc="lower right", fontsize="small")


def live(sample: Sampler, *, title: str, **options: Any) -> Monitor:
    monitor = Monitor(sample, title=title, **options)
    show(monitor)
    return monitor
