"""The terminal flamegraph stays readable however many frames a level holds
and however deep the tree goes: frames narrower than a few columns fold into
one ``+N more`` frame per parent, never a row of bare boundaries."""
from __future__ import annotations

from io import StringIO

import pytest
from rich.console import Console

from msprof.analysis import flame
from msprof.cli.render import flame as render


def _draw(lines, width):
    console = Console(width=width, file=StringIO(), color_system=None)
    for line in lines:
        console.print(line, soft_wrap=True)
    return console.file.getvalue().splitlines()


def _wide_and_deep(fanout=200, depth=12) -> flame.Frame:
    """A step with two big ops and ``fanout`` small ones (together 80 % of
    the time, as a model of many tiny kernels), above a chain ``depth`` deep
    whose every level splits 60/25/15 and then into ``fanout`` crumbs."""
    step = flame.Frame("step 1")
    step.children.append(flame.Frame("MatMul-op1", 600))
    step.children.append(flame.Frame("Conv2D-op2", 400))
    for i in range(fanout):
        step.children.append(flame.Frame(f"Tiny{i}-op{i + 3}", 20))
    chain = flame.Frame("net")
    node = chain
    for d in range(depth):
        big, mid, small = (flame.Frame(f"cell{d}", 0), flame.Frame(f"side{d}a", 250),
                           flame.Frame(f"side{d}b", 150))
        small.children = [flame.Frame(f"crumb{d}.{i}", 1) for i in range(150)]
        node.children = [big, mid, small]
        node = big
    node.children = [flame.Frame("leaf", 600)]

    def total(f):
        if f.children:
            f.value = sum(total(c) for c in f.children)
        return f.value

    root = flame.Frame("all", children=[step, chain])
    total(root)
    for _, f in root.walk():
        f.children.sort(key=lambda c: (-c.value, c.name))
    return root


def _segments(line):
    out, start = [], None
    for x, ch in enumerate(line):
        if start is None and ch != " ":
            start = x
        if ch == render.BOUNDARY and start is not None:
            out.append((start, x + 1, line[start:x].rstrip()))
            start = None
    return out


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_no_row_of_bars_at_any_width(width):
    root = _wide_and_deep()
    lines = _draw(render.render([("all", root)], width, "device time", color=False), width)
    body = lines[1:]
    assert len(body) >= 10                     # the deep chain is drawn, level after level
    for line in body:
        assert len(line) <= width
        assert "││" not in line, line
        segs = _segments(line)
        narrow = [s for s in segs if s[1] - s[0] < render.MIN_COLS]
        # at most one narrow frame per parent, and never two side by side
        for (a0, a1, _), (b0, b1, _) in zip(segs, segs[1:]):
            assert not (a1 - a0 < render.MIN_COLS and b1 - b0 < render.MIN_COLS), line
        assert len(narrow) <= len(segs) // 2 + 1
    text = "\n".join(body)
    assert "+20" in text                       # the step's crumbs, as one frame
    assert "Tiny0" not in text


def test_fold_keeps_frames_that_are_wide_enough():
    root = _wide_and_deep(fanout=3)
    rows = render.layout(root, 800)
    names = {c.frame.name for row in rows for c in row}
    # a Tiny op (20 of 6460) is 2.5 columns at 800: folded (their sum: 7.4
    # columns, drawn); MatMul (600) is kept
    assert "MatMul-op1" in names and "Tiny0-op3" not in names and "+3 more" in names
    folded = next(c for row in rows for c in row if c.frame.name == "+3 more")
    assert folded.frame.value == 60 and folded.frame.cls == flame.OTHER
    # at 2000 columns the same frames are 6 columns wide and drawn one by one
    names = {c.frame.name for row in render.layout(root, 2000) for c in row}
    assert {"Tiny0-op3", "Tiny1-op4", "Tiny2-op5"} <= names


def test_a_frame_just_over_the_limit_is_drawn_just_under_is_folded():
    # 100 columns for a total of 1000: MIN_COLS columns = 40
    def tree(v):
        return flame.Frame("all", 1000, children=[
            flame.Frame("big", 1000 - 2 * v), flame.Frame("a", v), flame.Frame("b", v)])
    wide = {c.frame.name for row in render.layout(tree(41), 100) for c in row}
    thin = {c.frame.name for row in render.layout(tree(39), 100) for c in row}
    assert {"a", "b"} <= wide and "+2 more" not in wide
    assert "a" not in thin and "+2 more" in thin


def test_lone_narrow_child_is_not_renamed():
    only = [flame.Frame("only", 1)]
    assert flame.fold_children(only, 50) == only
    two = flame.fold_children([flame.Frame("a", 1), flame.Frame("b", 2)], 50)
    assert [(f.name, f.value) for f in two] == [("+2 more", 3)]
