"""``msprof report``: per-operator statistics, the per-device step
breakdown and the ranked findings of a profile directory."""
from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

import msprof
from msprof.analysis.report import SECTIONS
from msprof.cli.help import command
from msprof.cli.reporters import json as json_reporter
from msprof.cli.reporters import table as table_reporter
from msprof.errors import MsprofError


class Format(str, enum.Enum):
    table = "table"
    json = "json"


def report(
    dirs: Annotated[list[Path], typer.Argument(
        metavar="DIR", help="Profile directory; several (one per node) merge by rank.")],
    format: Annotated[Format, typer.Option(
        "--format", "-f", help="table (for people) or json (one document, for tools).")] = Format.table,
    rank: Annotated[Optional[int], typer.Option(
        "--rank", "-r", metavar="R", help="Only this rank.")] = None,
    top: Annotated[int, typer.Option(
        "--top", "-k", metavar="K", help="Operators to list, by total time (0: all).")] = 15,
    steps: Annotated[bool, typer.Option(
        "--steps", help="Also list every step's breakdown (table format).")] = False,
    section: Annotated[Optional[list[str]], typer.Option(
        "--section", "-s", metavar="SECTION", autocompletion=lambda: list(SECTIONS),
        help="Only these sections (repeat, or comma-separated): "
        + ", ".join(SECTIONS) + ".")] = None,
    html: Annotated[Optional[Path], typer.Option(
        "--html", metavar="FILE", help="Write an interactive HTML report (one self-contained "
        "file that opens offline) to FILE, or into FILE when it is a directory.")] = None,
    window: Annotated[Optional[str], typer.Option(
        "--window", metavar="A:B", help="Steps the HTML report's timeline shows "
        "(default: the slowest step and its neighbours).")] = None,
) -> None:
    """Bottleneck report: operators, per-device breakdown, communication,
    imbalance, pipeline, memory, host-bound, critical path, findings."""
    if top < 0:
        raise MsprofError(f"--top must be 0 or more, not {top}")
    wanted = [w.strip() for s in section or [] for w in s.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in SECTIONS]
    if unknown:
        raise MsprofError(f"no report section {unknown[0]!r} (sections: {', '.join(SECTIONS)})")
    steps_window = _window(window) if window is not None else None
    if html is not None and format is Format.json:
        raise MsprofError("--html writes an HTML page; leave out --format json")
    if steps_window and html is None:
        raise MsprofError("--window chooses the HTML timeline's steps; add --html FILE")
    profile = msprof.load(dirs[0] if len(dirs) == 1 else dirs)
    if html is not None:
        # plotly loads only for --html: the text report starts as fast as before
        from msprof.cli.reporters import html as html_reporter
        out = html_reporter.target(html, dirs)
        from msprof.cli.output_paths import refuse_links
        refuse_links(out)
        size = html_reporter.write(profile, out, rank=rank, window=steps_window)
        Console(stderr=True).print(f"wrote {out} ({size / 2**20:.1f} MiB)", highlight=False)
        return
    doc = profile.report(rank=rank, top=top or None, sections=wanted or None)
    if format is Format.json:
        json_reporter.render(doc, sys.stdout)
    else:
        table_reporter.render(doc, Console(), steps=steps)


def _window(text: str) -> tuple[int, int]:
    """``"A:B"`` (or ``"A"``) as the first and last step."""
    a, _, b = text.partition(":")
    try:
        first, last = int(a), int(b or a)
    except ValueError:
        raise MsprofError(f"--window takes steps as A:B (such as 10:12), not {text!r}") from None
    if first > last:
        raise MsprofError(f"--window {text}: the first step is after the last")
    return first, last


def register(app: typer.Typer) -> None:
    command(app, "msprof report msprof-20261128-180000",
            "msprof report OUT --rank 1 --section ops,memory --top 30",
            "msprof report OUT --format json > report.json")(report)
