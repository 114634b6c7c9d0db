"""The terminal flamegraph at fixed widths, checked for structure: every
frame present where it fits, each as wide as its share within one cell."""
from __future__ import annotations

from io import StringIO

import pytest
from rich.console import Console

from profiles import dp_slow  # noqa: F401  (fixture)

from msprof.analysis import flame
from msprof.cli.render import flame as render


def _draw(lines, width):
    console = Console(width=width, file=StringIO(), color_system=None)
    for line in lines:
        console.print(line, soft_wrap=True)
    return console.file.getvalue().splitlines()


def _segments(line):
    """(x0, x1, text) of every frame on a drawn line: a frame ends at its │."""
    out, start = [], None
    for x, ch in enumerate(line):
        if start is None and ch != " ":
            start = x
        if ch == render.BOUNDARY and start is not None:
            out.append((start, x + 1, line[start:x].rstrip()))
            start = None
    return out


@pytest.mark.parametrize("width", [80, 120, 200])
def test_widths_proportional_within_one_cell(dp_slow, width):
    (title, root), = flame.trees(dp_slow)
    lines = _draw(render.render([(title, root)], width, "device time", color=False), width)
    assert lines[0].startswith("all ranks — device time, 84.00 us")
    body = lines[1:]
    cells = render.layout(root, width)
    assert len(body) == len(cells)
    for drawn, row in zip(body, cells):
        assert len(drawn) <= width
        segs = _segments(drawn)
        assert len(segs) == len(row)
        for (x0, x1, text), cell in zip(segs, row):
            expect = cell.frame.value / root.value * width
            assert abs((x1 - x0) - expect) <= 1, (cell.frame.name, x1 - x0, expect)
            name = cell.frame.name
            assert text == render.label(cell)
            assert name.startswith(text.rstrip("…").split(" ")[0]) or text.startswith(name)


def test_frames_present_and_shares_at_200(dp_slow):
    (title, root), = flame.trees(dp_slow)
    text = "\n".join(_draw(render.render([(title, root)], 200, "device time", color=False), 200))
    for name in ("steps 0-2 100%", "Gradients", "AllReduce-op3", "MatMul-op1", "MatMulGrad-op2",
                 "BiasGrad-op4", "dense"):
        assert name in text
    # 30000 of 84000 ns
    assert "MatMul-op1 35.7%" in text


def test_narrow_frames_truncate_never_overlap(dp_slow):
    trees = flame.trees(dp_slow, side_by_side=True)
    for width in (80, 120):
        lines = _draw(render.render(trees, width, "device time", color=False), width)
        for line in lines:
            assert len(line) <= width
        body = lines[2:]
        for line in body:
            for x0, x1, text in _segments(line):
                assert len(text) <= x1 - x0 - 1
        assert any("…" in line for line in body)


def test_flame_orientation_puts_roots_at_the_bottom(dp_slow):
    trees = flame.trees(dp_slow)
    icicle = _draw(render.render(trees, 100, "device time", color=False), 100)
    fl = _draw(render.render(trees, 100, "device time", color=False, flame=True), 100)
    assert icicle[1:] == fl[1:][::-1]
    assert fl[-1].startswith("steps 0-2 100%")


def test_colour_follows_op_class(dp_slow):
    trees = flame.trees(dp_slow)
    lines = render.render(trees, 120, "device time", color=True)
    styles = {}
    for line in lines[2:]:
        for span in line.spans:
            styles.setdefault(line.plain[span.start:span.end].split(" ")[0], span.style)
    assert "blue" in styles["AllReduce-op3"] or "sky" in styles["AllReduce-op3"]
    assert any(c in styles["MatMul-op1"] for c in ("orange", "red", "goldenrod"))


def test_max_depth_and_empty():
    root = flame.Frame("all", 10, children=[flame.Frame("a", 10, children=[flame.Frame("b", 10)])])
    assert len(render.render_lines(root, 40, max_depth=1)) == 1
    assert render.render([("x", flame.Frame("x"))], 40, "device time")[-1].plain.startswith(
        "nothing to draw")
