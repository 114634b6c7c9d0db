"""``msprof run``: profile a training script into a profile directory."""
from __future__ import annotations

import os
import sys
import time
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from msprof.profiler.session import RunStats, profile_run


def default_output() -> str:
    return f"msprof-{time.strftime('%Y%m%d-%H%M%S')}"


def progress_line(stats: RunStats) -> Table:
    """The live line shown while collecting."""
    rate = stats.events / stats.elapsed if stats.elapsed > 0 else 0.0
    t = Table.grid(padding=(0, 2))
    lost_style = "bold red" if stats.lost else ""
    t.add_row(
        f"[bold]msprof[/] collecting {stats.elapsed:6.1f}s",
        f"events {stats.events:,}",
        f"{rate:,.0f}/s",
        f"[{lost_style}]lost {stats.lost:,}[/]" if lost_style else f"lost {stats.lost:,}",
        f"ranks {stats.ranks}",
    )
    return t


def summary(result, console: Console) -> None:
    meta = result.meta
    console.print(
        f"[bold]msprof[/]: {meta['events']:,} events from {len(meta['ranks'])} rank(s) in "
        f"{result.stats.elapsed:.1f}s, backend {result.backend}, "
        f"lost {meta['lost_events']:,}, exit status {result.exit_status}")
    if meta["lost_events"]:
        console.print(f"[bold red]msprof: {meta['lost_events']:,} events were lost[/] "
                      f"({', '.join(f'{k} {v}' for k, v in meta['lost_by_cause'].items() if v)})")
    console.print(f"profile written to [bold]{result.path}[/]  "
                  f"(msprof report {result.path})")


def run(
    script: Annotated[str, typer.Argument(help="Python training script (or executable) to profile.")],
    args: Annotated[Optional[list[str]], typer.Argument(help="Arguments passed to the script.")] = None,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="Profile directory to write (default msprof-<stamp>).")] = None,
    nprocs: Annotated[int, typer.Option("-n", "--nprocs", help="Number of ranks (devices); >1 launches through mpiexec.")] = 1,
    backend: Annotated[str, typer.Option(help="auto (eBPF, else in-process), ebpf (never fall back) or inprocess.")] = "auto",
    print_bpf: Annotated[bool, typer.Option("--print-bpf", help="Print the BPF program msprof loads, and exit.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No live progress.")] = False,
) -> None:
    """Profile SCRIPT [ARGS...]; exits with the script's exit status."""
    err = Console(stderr=True, soft_wrap=True)
    if print_bpf:
        from msprof.profiler.ebpf import program_text
        from msprof.profiler.library import runtime_probe_library
        print(program_text(runtime_probe_library()))
        return
    out = output or default_output()
    live = None
    if not quiet and err.is_terminal:
        live = Live(progress_line(RunStats()), console=err, refresh_per_second=4, transient=True)
        live.start()
    try:
        result = profile_run(script, args or [], out, backend=backend, nprocs=nprocs,
                             on_tick=(lambda s: live.update(progress_line(s))) if live else None)
    finally:
        if live:
            live.stop()
    if result.fallback_reason:
        err.print(f"msprof: eBPF unavailable ({result.fallback_reason}); "
                  "used the in-process backend")
    summary(result, err)
    raise typer.Exit(result.exit_status)


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False,
                                  "ignore_unknown_options": True})(run)
