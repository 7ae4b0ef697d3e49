"""Predict, then observe: a prediction is locked in before the answer is on screen.

In a notebook, ``helpers.predict(...)`` shows the question, an input and a "Lock in" button; once
locked, the prediction cannot change. Without a front end (a script, a test run) it records
``answer=`` if you pass one. The observing cell calls ``.observe(value)``, which says whether you
were right.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipywidgets as widgets


class Prediction:
    """One locked-in prediction: ``.value`` (None until locked), ``.locked_at`` (a timestamp)."""

    def __init__(self, question: str, *, kind: type, choices: Sequence[str] | None) -> None:
        self.question = question
        self.kind = kind
        import ipywidgets as widgets

        self.choices = list(choices) if choices else None
        self.value: Any = None
        self.locked_at: float | None = None
        if self.choices:
            self.input: widgets.ValueWidget = widgets.Dropdown(
                options=["(choose)", *self.choices], description="I predict:"
            )
        elif kind is int:
            self.input = widgets.IntText(description="I predict:")
        else:
            self.input = widgets.Text(description="I predict:", placeholder="your prediction")
        self.button = widgets.Button(description="Lock in", icon="lock", button_style="primary")
        self.status = widgets.Label("not locked in yet")
        self.button.on_click(lambda _: self.lock(self.input.value))
        self.widget = widgets.VBox(
            [
                widgets.HTML(f"<b>Predict:</b> {question}"),
                widgets.HBox([self.input, self.button]),
                self.status,
            ]
        )

    def lock(self, value: Any) -> None:
        """Record ``value`` as the prediction, once; later calls change nothing."""
        if self.locked_at is not None or value in (None, "", "(choose)"):
            return
        self.value = self.kind(value)
        self.locked_at = time.time()
        self.input.disabled = self.button.disabled = True
        self.status.value = f"locked in: {self.value!r}"

    def observe(self, observed: Any) -> bool | None:
        """Compare the prediction with what happened, and say so. Returns whether it was right
        (None when nothing was locked in)."""
        if self.locked_at is None:
            print(
                f"Observed: {observed!r}. (No prediction was locked in; next time, lock one in first.)"
            )
            return None
        right = _same(self.value, observed)
        mark = "✓ Right" if right else "✗ Not this time"
        print(f"{mark}: you predicted {self.value!r}; observed {observed!r}.")
        return right

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        state = f"locked in: {self.value!r}" if self.locked_at else "not locked in"
        return f"<Prediction {self.question!r}, {state}>"


def _same(predicted: Any, observed: Any) -> bool:
    if isinstance(predicted, str) and isinstance(observed, str):
        return predicted.strip().lower() == observed.strip().lower()
    return bool(predicted == observed)


def predict(
    question: str,
    *,
    kind: type = str,
    choices: Sequence[str] | None = None,
    answer: Any = None,
) -> Prediction:
    """Ask for a prediction before the next cell shows the answer.

    ``kind=int`` asks for a number; ``choices`` offers named outcomes. In a notebook, type your
    prediction and press "Lock in"; or pass ``answer=`` to lock it in from code.

    CLI: (none: write your prediction down before you run the next command)

    >>> guess = predict("How many processes will ps list?", kind=int, answer=3)   # doctest: +SKIP
    >>> guess.observe(3)                                                            # doctest: +SKIP
    ✓ Right: you predicted 3; observed 3.
    """
    prediction = Prediction(question, kind=kind, choices=choices)
    if answer is not None:
        prediction.lock(answer)
    return prediction
