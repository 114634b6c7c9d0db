"""``msprof flame``: a flamegraph of a profile drawn in the terminal."""
from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

import msprof
from msprof.analysis import flame as flame_analysis
from msprof.cli.help import command
from msprof.cli.render import flame as flame_render
from msprof.errors import MsprofError


class Metric(str, enum.Enum):
    device = "device"
    launch = "launch"
    comm = "comm"
    memory = "memory"


class Orientation(str, enum.Enum):
    icicle = "icicle"
    flame = "flame"


def flame(
    dirs: Annotated[list[Path], typer.Argument(
        metavar="DIR", help="Profile directory; several (one per node) merge by rank.")],
    metric: Annotated[Metric, typer.Option(
        "--metric", "-m", help="Frame widths: device (kernel time), launch (start - launch "
        "delay), comm (communication-stream time), memory (bytes allocated).")] = Metric.device,
    rank: Annotated[Optional[int], typer.Option(
        "--rank", "-r", metavar="R", help="Only this rank (default: all ranks merged).")] = None,
    side_by_side: Annotated[bool, typer.Option(
        "--side-by-side", "-s", help="One flamegraph per rank, next to each other, on one scale.")] = False,
    step: Annotated[Optional[int], typer.Option(
        "--step", metavar="N", help="Only this step.")] = None,
    per_step: Annotated[bool, typer.Option(
        "--per-step", help="One root frame per step (default: all steps in one).")] = False,
    focus: Annotated[Optional[str], typer.Option(
        "--focus", "-f", metavar="SCOPE", help="Zoom into the frames under SCOPE "
        "(a scope path such as net/conv1, an op type or an op name).")] = None,
    min_share: Annotated[float, typer.Option(
        "--min-share", metavar="SHARE", help="Fold frames below this share of the total (0.01 = 1%) "
        "into one '+N more' frame per parent.")] = 0.005,
    orientation: Annotated[Orientation, typer.Option(
        "--orientation", "-o", help="icicle (roots on top) or flame (roots at the bottom).")
    ] = Orientation.icicle,
    depth: Annotated[Optional[int], typer.Option(
        "--depth", "-d", metavar="N", help="Draw at most this many levels.")] = None,
    width: Annotated[Optional[int], typer.Option(
        "--width", "-w", metavar="COLUMNS", help="Columns (default: the terminal's width, 80 in a pipe).")] = None,
) -> None:
    """Terminal flamegraph: step -> cell scopes -> op type -> op."""
    if not 0 <= min_share < 1:
        raise MsprofError(f"--min-share must be in [0, 1), not {min_share}")
    if width is not None and width < 20:
        raise MsprofError(f"--width must be 20 or more, not {width}")
    if depth is not None and depth < 1:
        raise MsprofError(f"--depth must be 1 or more, not {depth}")
    if side_by_side and rank is not None:
        raise MsprofError("--side-by-side draws every rank; leave out --rank")
    profile = msprof.load(dirs[0] if len(dirs) == 1 else dirs)
    trees = flame_analysis.trees(profile, metric.value, rank=rank, side_by_side=side_by_side,
                                 step=step, per_step=per_step, focus_scope=focus,
                                 min_share=min_share)
    console = Console(width=width) if width else Console()
    unit = "B" if metric.value in flame_analysis.BYTE_METRICS else "ns"
    lines = flame_render.render(trees, console.width, flame_analysis.METRICS[metric.value], unit,
                                flame=orientation is Orientation.flame, color=console.color_system is not None,
                                max_depth=depth)
    for line in lines:
        console.print(line, soft_wrap=True)


def register(app: typer.Typer) -> None:
    command(app, "msprof flame OUT",
            "msprof flame OUT --metric memory --rank 0 --depth 4",
            "msprof flame OUT --side-by-side --focus net/conv1 --min-share 0.01")(flame)
