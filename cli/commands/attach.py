"""``msprof attach PID...``: profile processes that are already running."""
from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from msprof.cli.commands.run import Mode, _collect, default_output
from msprof.cli.help import command
from msprof.profiler.attach_session import profile_attached


def attach(
    pids: Annotated[list[int], typer.Argument(
        metavar="PID", help="Process to profile (it imported msprof.runtime), or a parent of "
        "such processes (mpiexec: every rank below it).")],
    duration: Annotated[Optional[float], typer.Option(
        "--duration", "-d", metavar="SECONDS",
        help="Detach after this long (default: at Ctrl-C, or when the processes end).")] = None,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="DIR", help="Profile directory to write (default msprof-<stamp>).")] = None,
    mode: Annotated[Mode, typer.Option(
        help="trace (every kernel, pool event and step) or summary (per-operator aggregates).")
    ] = Mode.trace,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No live progress.")] = False,
) -> None:
    """Profile running processes until Ctrl-C or --duration, then detach:
    the processes go on as before."""
    err = Console(stderr=True, soft_wrap=True)
    out = output or default_output()

    def attached(targets) -> None:
        if not quiet:
            err.print(f"[bold]msprof[/]: attached to {len(targets)} process(es): "
                      + ", ".join(f"{t.pid} ({' '.join(t.command)[:40]})" for t in targets)
                      + (f" for {duration:g} s" if duration else "; Ctrl-C detaches"),
                      highlight=False)

    result = _collect(err, quiet, lambda tick: profile_attached(
        pids, out, duration=duration, mode=mode.value, on_tick=tick, on_attached=attached))
    meta = result.meta
    err.print(f"[bold]msprof[/]: detached after {result.stats.elapsed:.1f}s: "
              f"{meta['events']:,} events from {len(meta['ranks'])} rank(s), "
              f"lost {meta['lost_events']:,}; "
              + (f"{len(meta['still_running'])} process(es) still running"
                 if meta["still_running"] else f"the job ended (exit status {meta['exit_status']})"),
              highlight=False)
    if meta["lost_events"]:
        err.print(f"[bold red]msprof: {meta['lost_events']:,} events were lost[/] "
                  f"({', '.join(f'{k} {v}' for k, v in meta['lost_by_cause'].items() if v)})")
    err.print(f"profile written to [bold]{result.path}[/]  (msprof report {result.path})")


def register(app: typer.Typer) -> None:
    command(app, "sudo msprof attach 12345 --duration 10",
            "sudo msprof attach $(pgrep -f train.py) -o during-epoch-3",
            "sudo msprof attach $(pgrep mpiexec)          # every rank of the job",
            )(attach)
