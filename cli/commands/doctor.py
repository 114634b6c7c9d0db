"""``msprof doctor``: what the eBPF backend needs here, and how to fix what
is missing; ``--fix`` fixes what it can (BCC linked into this environment,
tracefs mounted, kernel headers linked)."""
from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from msprof.cli.help import command
from msprof.errors import MsprofError
from msprof.profiler import system_setup
from msprof.profiler.availability import REQUIRED, checks

# The checks --fix knows how to fix, and how.
FIXES = {
    "bcc": system_setup.link_system_bcc,
    "tracefs": system_setup.mount_tracefs,
    "kernel headers": system_setup.link_kernel_headers,
}


def doctor_table(results) -> Table:
    t = Table(title="msprof doctor", show_lines=False)
    t.add_column("check")
    t.add_column("ok")
    t.add_column("detail / fix", overflow="fold")
    for c in results:
        mark = "[green]yes[/]" if c.ok else ("[red]NO[/]" if c.name in REQUIRED else "[yellow]no[/]")
        t.add_row(c.name, mark, c.detail if c.ok else f"{c.detail}\nfix: {c.fix}" if c.fix else c.detail)
    return t


def doctor(
    fix: Annotated[bool, typer.Option(
        "--fix", help="Fix what can be fixed here: link the system's BCC into this Python "
        "environment, mount tracefs, link the kernel headers (the last two as root).")] = False,
) -> None:
    """Check that the eBPF backend can run here; exit 1 if it cannot."""
    console = Console()
    results = checks()
    if fix:
        for c in results:
            if not c.ok and c.name in FIXES:
                try:
                    console.print(f"fixed {c.name}: {FIXES[c.name]()}", highlight=False)
                except MsprofError as e:
                    console.print(f"[red]could not fix {c.name}[/]: {e}", highlight=False)
        results = checks()
    console.print(doctor_table(results))
    missing = [c for c in results if c.name in REQUIRED and not c.ok]
    if missing:
        console.print(f"eBPF backend: [red]unavailable[/] ({len(missing)} missing); "
                      "msprof run will use the in-process backend")
        raise typer.Exit(1)
    console.print("eBPF backend: [green]ready[/]")


def register(app: typer.Typer) -> None:
    command(app, "msprof doctor",
            "msprof doctor --fix        # after pip install msprof into a virtualenv")(doctor)
