"""Readable output: tables that render in a notebook and in a terminal, and step lines."""

from __future__ import annotations

import html
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class Table:
    """Rows of values with named columns; shows as an HTML table in Jupyter, text elsewhere."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            yield dict(zip(self.columns, row, strict=True))

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(zip(self.columns, self.rows[index], strict=True))

    def column(self, name: str) -> list[Any]:
        """All values of one column, e.g. ``table.column("name")``."""
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def __str__(self) -> str:
        cells = [self.columns, *[[str(v) for v in row] for row in self.rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = [
            "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells
        ]
        if not self.rows:
            lines.append("(none)")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td style='text-align:left'>{html.escape(str(v))}</td>" for v in r)
            + "</tr>"
            for r in self.rows
        )
        empty = "" if self.rows else f"<tr><td colspan={len(self.columns)}>(none)</td></tr>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}{empty}</tbody></table>"


def _use_colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _mark(ok: bool) -> str:
    if not _use_colour():
        return "✓" if ok else "✗"
    return "\033[32m✓\033[0m" if ok else "\033[31m✗\033[0m"


@contextmanager
def step(title: str) -> Iterator[None]:
    """Print ' • title' now and ' ✓ title (3.2 s)' or ' ✗ title' when the block ends."""
    print(f" • {title} ...", flush=True)
    start = time.monotonic()
    try:
        yield
    except BaseException:
        print(f" {_mark(False)} {title}", flush=True)
        raise
    print(f" {_mark(True)} {title} ({time.monotonic() - start:.1f} s)", flush=True)


class Picture:
    """A drawn picture (PNG) that shows itself in a notebook and can be saved."""

    def __init__(self, png: bytes) -> None:
        self.png = png

    @classmethod
    def of(cls, figure: Any) -> Picture:
        """The picture of a matplotlib figure."""
        import io

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return cls(buffer.getvalue())

    def save(self, path: str) -> None:
        with open(path, "wb") as handle:
            handle.write(self.png)

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return f"<picture, {len(self.png)} bytes of PNG>"
