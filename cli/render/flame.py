"""Drawing frame trees as terminal flamegraphs: pure functions from a
:class:`~msprof.analysis.flame.Frame` tree and a width to rich ``Text`` lines.

Each depth is one line.  A frame covers the columns ``[x0, x1)`` given by the
cumulative value before and after it, scaled to the width and rounded, so
widths are proportional within one cell and neighbours never overlap.  A
frame ends with a ``│`` boundary; its label (name, and its share when it
fits) is cut with ``…`` to the room left.  Under each parent, the children
narrower than :data:`MIN_COLS` columns are folded into one ``+N more``
frame, so a deep or wide tree never draws a row of bare boundaries.
Colour is by op class; without a colour system only the characters remain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rich.text import Text

from msprof.analysis.flame import COMM, COMPUTE, MEMORY, OTHER, Frame, fold_children

BOUNDARY = "│"
# A frame narrower than this is folded with its narrow siblings: 4 columns
# hold three characters of a name and the boundary ("Co…│", "+12│"), the
# least that still tells frames apart; narrower ones read as bare bars.
MIN_COLS = 4

# Background palettes per op class; neighbours alternate shades.
PALETTES = {
    COMPUTE: ["on dark_orange3", "on orange3", "on dark_goldenrod", "on red3"],
    COMM: ["on dodger_blue3", "on steel_blue", "on deep_sky_blue4", "on royal_blue1"],
    MEMORY: ["on green4", "on sea_green3", "on dark_olive_green3", "on spring_green4"],
    OTHER: ["on grey39", "on grey50"],
}
LEGEND = ((COMPUTE, "compute"), (COMM, "communication"), (MEMORY, "memory"), (OTHER, "other"))


@dataclass(frozen=True)
class Cell:
    """One frame placed on a line: columns ``[x0, x1)``."""
    depth: int
    x0: int
    x1: int
    frame: Frame
    share: float


def layout(root: Frame, width: int, total: Optional[int] = None,
           max_depth: Optional[int] = None) -> list[list[Cell]]:
    """Cells per depth (depth 0: the root's children).  ``total`` sets the
    scale (default: the root's value), so several trees can share one."""
    total = total or root.value
    rows: list[list[Cell]] = []
    if total <= 0 or width <= 0:
        return rows

    def col(v: int) -> int:
        return int((v * width + total // 2) // total)

    narrow = MIN_COLS * total / width     # the value of MIN_COLS columns

    def place(f: Frame, start: int, depth: int) -> None:
        if max_depth is not None and depth >= max_depth:
            return
        cum = start
        for c in fold_children(f.children, narrow):
            x0, x1 = col(cum), col(cum + c.value)
            cum += c.value
            # A folded frame too narrow to name, or any frame of one column,
            # would be a bare bar: its columns stay blank under the parent.
            folded = not any(c is k for k in f.children)
            if x1 - x0 < (MIN_COLS if folded else 2):
                continue
            while len(rows) <= depth:
                rows.append([])
            rows[depth].append(Cell(depth, x0, x1, c, c.value / total))
            place(c, cum - c.value, depth + 1)

    place(root, 0, 0)
    return rows


def fit(text: str, room: int) -> str:
    """``text`` cut to ``room`` columns, ending with ``…`` when cut."""
    if room <= 0:
        return ""
    if len(text) <= room:
        return text
    if room == 1:
        return "…"
    return text[: room - 1] + "…"


def label(cell: Cell) -> str:
    """The text inside a cell: name and share where both fit, else the name cut."""
    room = cell.x1 - cell.x0 - 1
    name = cell.frame.name
    pct = f" {cell.share * 100:.1f}%" if cell.share < 0.9995 else " 100%"
    if len(name) + len(pct) <= room:
        return name + pct
    if name.startswith("+") and name.endswith(" more") and room < len(name):
        name = name[: -len(" more")]     # "+12" says more than "+1…"
    return fit(name, room)


def _style(cell: Cell, index: int, color: bool) -> str:
    if not color:
        return ""
    pal = PALETTES.get(cell.frame.cls, PALETTES[OTHER])
    return "black " + pal[(index + cell.depth) % len(pal)]


def render_lines(root: Frame, width: int, total: Optional[int] = None, flame: bool = False,
                 color: bool = True, max_depth: Optional[int] = None) -> list[Text]:
    """The flamegraph as one ``Text`` per depth, each exactly ``width``
    columns or less (trailing blanks dropped).  Icicle (root on top) unless
    ``flame``."""
    lines = []
    for row in layout(root, width, total, max_depth):
        t = Text(no_wrap=True, overflow="crop")
        pos = 0
        for i, cell in enumerate(row):
            if cell.x0 > pos:
                t.append(" " * (cell.x0 - pos))
            w = cell.x1 - cell.x0
            body = label(cell).ljust(w - 1)
            t.append(body + BOUNDARY, style=_style(cell, i, color))
            pos = cell.x1
        t.rstrip()
        lines.append(t)
    if flame:
        lines.reverse()
    return lines


def _human(value: float, unit: str) -> str:
    if unit == "B":
        for u, d in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value >= d:
                return f"{value / d:.1f} {u}"
        return f"{value:.0f} B"
    for u, d in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if value >= d:
            return f"{value / d:.2f} {u}"
    return f"{value:.0f} ns"


def header(title: str, metric_label: str, total: int, unit: str, width: int) -> Text:
    return Text(fit(f"{title} — {metric_label}, {_human(total, unit)}", width), no_wrap=True,
                style="bold")


def legend(width: int) -> Text:
    """Colour swatches per op class (drawn only where there is colour)."""
    t = Text(no_wrap=True, overflow="crop")
    for cls, name in LEGEND:
        t.append("  ", style=PALETTES[cls][0])
        t.append(f" {name}  ")
    t.truncate(width)
    t.rstrip()
    return t


def render(trees: list[tuple[str, Frame]], width: int, metric_label: str, unit: str = "ns",
           flame: bool = False, color: bool = True, max_depth: Optional[int] = None) -> list[Text]:
    """Every line of ``msprof flame``: a header, the legend, then the graph;
    several trees are drawn side by side on one scale (the largest total)."""
    if not trees:
        return [Text("nothing to draw: no events for this metric")]
    grand = max(t.value for _, t in trees) or 1
    if len(trees) == 1:
        title, root = trees[0]
        out = [header(title, metric_label, root.value, unit, width)] + ([legend(width)] if color else [])
        body = render_lines(root, width, grand, flame, color, max_depth)
        return out + (body or [Text("nothing to draw: no events for this metric")])
    gap = 1
    n = len(trees)
    pw = max(1, (width - gap * (n - 1)) // n)
    bodies = [render_lines(root, pw, grand, flame, color, max_depth) for _, root in trees]
    depth = max(len(b) for b in bodies)
    panels = []
    for (title, root), body in zip(trees, bodies):
        head = Text(fit(f"{title}: {_human(root.value, unit)}", pw), no_wrap=True, style="bold")
        # flame orientation: roots share the bottom line
        pad = [Text() for _ in range(depth - len(body))] if flame else []
        panels.append([head] + pad + body)
    height = max(len(p) for p in panels)
    out = [Text(fit(f"ranks side by side — {metric_label} (one scale)", width), style="bold")]
    out += [legend(width)] if color else []
    for i in range(height):
        line = Text(no_wrap=True, overflow="crop")
        for j, p in enumerate(panels):
            piece = p[i].copy() if i < len(p) else Text()
            piece.pad_right(pw - piece.cell_len)
            line.append_text(piece)
            if j < n - 1:
                line.append(" " * gap)
        line.rstrip()
        out.append(line)
    return out
