"""Live views: a picture in the notebook that redraws while something runs.

A ``Live`` view is an ipywidgets ``Image`` with Start and Stop buttons. A background thread calls
``update`` every ``interval`` seconds and redraws. ``stop()`` ends it and returns the last
picture, so the cell that stops a view leaves a still image in the saved notebook.

While nbgrader grades a notebook no thread is started: ``start`` updates a few times in the
foreground and draws one picture, so grading never leaves anything running.
"""

from __future__ import annotations

import io
import threading
import time
from typing import TYPE_CHECKING

from ._errors import CourseError
from ._identity import grading_mode
from ._output import Picture

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# matplotlib and ipywidgets load when a view is first made or drawn: importing them costs a
# second, which every notebook (and every graded one) would pay for nothing.


class Live:
    """Base of the live views. Subclasses implement ``update`` (collect) and ``draw`` (plot)."""

    figure_size = (8.0, 3.2)

    def __init__(self, *, title: str, interval: float = 1.0) -> None:
        import ipywidgets as widgets

        self.title = title
        self.interval = interval
        self._started_at = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.RLock()  # a view may catch up (and lock) while it draws
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="640px"))
        self.status = widgets.Label("stopped")
        self.start_button = widgets.Button(description="Start", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.widget = widgets.VBox(
            [widgets.HBox([self.start_button, self.stop_button, self.status]), self.image]
        )

    # --- what a subclass provides ----------------------------------------------------------

    def update(self) -> None:
        """Collect what the picture shows (one sample, or what a watch brought)."""

    def draw(self, figure: Figure) -> None:
        """Plot onto ``figure``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what ``update`` holds open (a watch, say) when the view stops."""

    def pause(self) -> float:
        """Seconds to wait between updates (views fed by a watch wait in the watch instead)."""
        return self.interval

    # --- running ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def elapsed(self) -> float:
        """Seconds since the view was made."""
        return time.monotonic() - self._started_at

    def redraw(self) -> None:
        from matplotlib.figure import Figure  # a bare Figure draws with Agg, whatever the backend

        figure = Figure(figsize=self.figure_size, dpi=80)
        with self.lock:
            self.draw(figure)
        figure.suptitle(self.title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        self.image.value = buffer.getvalue()

    def step(self) -> None:
        """One update and one redraw."""
        self.update()
        self.redraw()

    def start(self, *, updates_when_grading: int = 3) -> Live:
        """Start updating in the background (while grading: a few updates, no thread)."""
        if self.running:
            return self
        if grading_mode():
            for _ in range(updates_when_grading):
                self.step()
                time.sleep(self.interval)
            self.status.value = "grading: drawn once, no background thread"
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="course-live-view", daemon=True)
        self._thread.start()
        self.status.value = "running"
        return self

    def stop(self) -> Picture:
        """Stop updating. Returns the last picture, to leave it as a still image."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 10)
        self._thread = None
        self.close()
        self.redraw()
        self.status.value = f"stopped after {self.elapsed():.0f} s"
        return Picture(bytes(self.image.value))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except CourseError as error:  # keep the notebook alive; show why it paused
                self.status.value = f"paused: {error.message}"
            self._stop.wait(self.pause())

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.title!r}: {'running' if self.running else 'stopped'}>"


def show(view: Live) -> Live:
    """Draw a view once and start it."""
    view.step()
    return view.start()
