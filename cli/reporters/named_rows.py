"""A table of named rows (operators) whose numbers are never cut.

Every numeric column is as wide as its widest cell; the name column takes
the width that is left, and a name longer than that is cut in the middle,
not at its end (a scope path loses its head: :func:`cut_path`): an operator's name ends in what tells it from its
siblings (``Conv2DBackpropFilter-op31`` and ``-op36``), so the cut keeps
that tail and shortens the head (``Conv2DBackp…-op31``).
"""
from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

MIN_NAME = 10   # narrower than this, a name says nothing; the table overflows instead
GAP = 2         # a column's padding between two cells, as reporters.table._table draws it


def cut_middle(name: str, width: int) -> str:
    """``name`` in at most ``width`` characters: unchanged if it fits, else
    its head, an ellipsis and its tail (the part after its last ``-`` or
    ``/`` when that is at most half the width, else the last half)."""
    if len(name) <= width:
        return name
    if width <= 1:
        return "…"[:width]
    sep = max(name.rfind("-"), name.rfind("/"))
    tail = name[sep:] if sep > 0 and len(name) - sep <= width // 2 else ""
    if not tail:
        tail = name[len(name) - (width - 1) // 2:] if width >= 4 else ""
    head = width - 1 - len(tail)
    return name[:head] + "…" + tail


def cut_path(path: str, width: int) -> str:
    """A scope path (``Gradients/net/conv1/Conv2DBackpropFilter-op35``) in
    at most ``width`` characters: whole if it fits, else its last
    components that fit behind an ellipsis (the operator and the cells
    nearest it: ``…conv1/Conv2DBackpropFilter-op35``), else the operator's
    name cut in its middle (:func:`cut_middle`)."""
    if len(path) <= width:
        return path
    parts = path.split("/")
    tail = parts[-1]
    for part in reversed(parts[:-1]):
        longer = part + "/" + tail
        if len(longer) + 1 > width:
            break
        tail = longer
    if len(tail) + 1 <= width:
        return "…" + tail
    return cut_middle(parts[-1], width)


class NamedRows:
    """Renders ``new_table()`` with a first column ``name_header`` and the
    right-justified ``columns``, one row per ``(name, *cells)``, the names
    fitted to the console's width when it is printed."""

    def __init__(self, new_table, name_header: str, columns: Sequence[str],
                 rows: Sequence[Sequence[str]], cut=cut_middle):
        self.new_table, self.name_header, self.cut = new_table, name_header, cut
        self.columns, self.rows = list(columns), [list(r) for r in rows]

    def widths(self) -> list[int]:
        return [max([len(c)] + [len(r[i]) for r in self.rows])
                for i, c in enumerate(self.columns, start=1)]

    def table(self, max_width: int) -> Table:
        widths = self.widths()
        room = max(MIN_NAME, max_width - sum(widths) - GAP * len(widths))
        t: Table = self.new_table()
        t.add_column(self.name_header, no_wrap=True)
        for name, width in zip(self.columns, widths):
            t.add_column(name, justify="right", no_wrap=True, min_width=width)
        for name, *cells in self.rows:
            t.add_row(self.cut(name, room), *cells)
        return t

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)
