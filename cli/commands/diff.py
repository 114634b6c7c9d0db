"""``msprof diff A B``: what changed from profile A (baseline) to profile B:
step time, per-operator and per-device deltas, findings that appeared or
vanished."""
from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import msprof
from msprof.analysis.diff import diff as diff_profiles
from msprof.analysis.report import to_json
from msprof.cli.help import command
from msprof.cli.reporters import diff as diff_reporter
from msprof.errors import MsprofError


class Format(str, enum.Enum):
    table = "table"
    json = "json"


def diff(
    a: Annotated[Path, typer.Argument(metavar="A", help="Baseline profile directory.")],
    b: Annotated[Path, typer.Argument(metavar="B", help="Profile directory to compare with it.")],
    format: Annotated[Format, typer.Option(
        "--format", "-f", help="table (for people) or json (one document, for tools).")] = Format.table,
    top: Annotated[int, typer.Option(
        "--top", "-k", metavar="K", help="Operators to list, by size of change (0: all).")] = 15,
) -> None:
    """Compare two profiles: step time, operators, devices, findings."""
    if top < 0:
        raise MsprofError(f"--top must be 0 or more, not {top}")
    doc = diff_profiles(msprof.load(a), msprof.load(b), top=top or None)
    if format is Format.json:
        json.dump(to_json(doc), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        diff_reporter.render(doc, Console())


def register(app: typer.Typer) -> None:
    command(app, "msprof diff before after",
            "msprof diff before after --top 5 --format json")(diff)
