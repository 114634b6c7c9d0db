"""``msprof doctor``: what the eBPF backend needs here, and how to fix what is missing."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from msprof.profiler.availability import REQUIRED, checks


def doctor_table(results) -> Table:
    t = Table(title="msprof doctor", show_lines=False)
    t.add_column("check")
    t.add_column("ok")
    t.add_column("detail / fix", overflow="fold")
    for c in results:
        mark = "[green]yes[/]" if c.ok else ("[red]NO[/]" if c.name in REQUIRED else "[yellow]no[/]")
        t.add_row(c.name, mark, c.detail if c.ok else f"{c.detail}\nfix: {c.fix}" if c.fix else c.detail)
    return t


def doctor() -> None:
    """Check that the eBPF backend can run here; exit 1 if it cannot."""
    console = Console()
    results = checks()
    console.print(doctor_table(results))
    missing = [c for c in results if c.name in REQUIRED and not c.ok]
    if missing:
        console.print(f"eBPF backend: [red]unavailable[/] ({len(missing)} missing); "
                      "msprof run will use the in-process backend")
        raise typer.Exit(1)
    console.print("eBPF backend: [green]ready[/]")


def register(app: typer.Typer) -> None:
    app.command()(doctor)
