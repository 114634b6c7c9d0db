"""``msprof run``: profile a training script into a profile directory."""
from __future__ import annotations

import enum
import os
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from msprof.cli.help import command
from msprof.errors import MsprofError
from msprof.profiler.outdir import default_name as default_output
from msprof.profiler.privileges import target_user
from msprof.profiler.session import RunStats, profile_command, profile_run


class Backend(str, enum.Enum):
    auto = "auto"
    ebpf = "ebpf"
    inprocess = "inprocess"


class Mode(str, enum.Enum):
    trace = "trace"
    summary = "summary"


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
        f"[bold]msprof[/]: {meta['events']:,} events"
        + (f" (+{meta['folded_events']:,} folded into the summary)" if meta.get("folded_events") else "")
        + f" from {len(meta['ranks'])} rank(s) in "
        f"{result.stats.elapsed:.1f}s, backend {result.backend}, "
        f"lost {meta['lost_events']:,}, exit status {result.exit_status}")
    if meta["lost_events"]:
        console.print(f"[bold red]msprof: {meta['lost_events']:,} events were lost[/] "
                      f"({', '.join(f'{k} {v}' for k, v in meta['lost_by_cause'].items() if v)})")
    if result.stats.stopped:
        console.print(f"partial profile kept in [bold]{result.path}[/]  "
                      f"(msprof report {result.path})")
    else:
        console.print(f"profile written to [bold]{result.path}[/]  "
                      f"(msprof report {result.path})")


def run(
    script: Annotated[str, typer.Argument(
        metavar="SCRIPT", help="Python training script, or a command (found on PATH) to "
        "profile; put -- before a command with options of its own.")],
    args: Annotated[Optional[list[str]], typer.Argument(
        metavar="ARGS", help="Arguments passed to the script.")] = None,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="DIR", help="New profile directory to write (default msprof-<stamp>-<random>).")] = None,
    nprocs: Annotated[int, typer.Option(
        "-n", "--nprocs", metavar="N", help="Number of ranks (devices); >1 launches through mpiexec.")] = 1,
    backend: Annotated[Backend, typer.Option(
        help="auto (eBPF, else in-process), ebpf (never fall back) or inprocess.")] = Backend.auto,
    mode: Annotated[Mode, typer.Option(
        help="trace (every kernel, pool event and step) or summary (kernels and pool events "
        "as per-operator counts, totals and histograms: cheaper, no timelines).")] = Mode.trace,
    print_bpf: Annotated[bool, typer.Option("--print-bpf", help="Print the BPF program msprof loads, and exit.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No live progress.")] = False,
    hosts: Annotated[Optional[str], typer.Option(
        "--hosts", metavar="HOST,...", help="Comma-separated machines to run the ranks on "
        "(one collector and one profile directory per machine).")] = None,
    hostfile: Annotated[Optional[str], typer.Option(
        "--hostfile", metavar="FILE", help="MPI hostfile naming the machines to run the ranks on.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace the profile already in -o DIR (never a directory that is not a profile).")] = False,
    user: Annotated[Optional[str], typer.Option(
        "--user", metavar="USER", help="Run the script as this user (name or uid; root only), who "
        "gets the profile; under sudo the default is the invoking user (SUDO_UID).")] = None,
) -> None:
    """Profile SCRIPT [ARGS...]; exits with the script's exit status."""
    err = Console(stderr=True, soft_wrap=True)
    backend, mode = backend.value, mode.value
    if print_bpf:
        from msprof.profiler.ebpf import program_text
        from msprof.profiler.library import runtime_probe_library
        print(program_text(runtime_probe_library(), mode=mode))
        return
    out = output or default_output()
    if hosts or hostfile:
        from msprof.profiler.nodes import run_on_hosts
        if user is not None:
            raise MsprofError("--user applies to one machine; with --hosts/--hostfile the ranks run "
                              "as the user the remote shell logs in as")
        status, nodes = run_on_hosts(script, args or [], out, nprocs=nprocs, hosts=hosts,
                                     hostfile=hostfile, backend=backend, mode=mode, force=force)
        err.print(f"[bold]msprof[/]: exit status {status}; {len(nodes)} node profile(s) under "
                  f"[bold]{out}[/]: {', '.join(os.path.basename(n) for n in nodes)}  (msprof report {out})")
        raise typer.Exit(status)
    target = target_user(user)
    result = _collect(err, quiet, lambda tick: profile_run(
        script, args or [], out, backend=backend, nprocs=nprocs, on_tick=tick, mode=mode,
        force=force, user=target))
    _finish(result, err)


def _collect(err: Console, quiet: bool, start):
    """Runs ``start(on_tick)`` with the live progress line (in a terminal);
    says at once, in one line, when collecting stops early (a full disk),
    quiet or not: the script may run on for hours."""
    live = None
    if not quiet and err.is_terminal:
        live = Live(progress_line(RunStats()), console=err, refresh_per_second=4, transient=True)
        live.start()
    said = []

    def tick(stats: RunStats) -> None:
        if stats.stopped and not said:
            said.append(stats.stopped)
            (live.console if live else err).print(
                f"[bold red]msprof: {escape(stats.stopped)}; stopped collecting[/] "
                "(the script goes on; the profile keeps what was written)")
        if live:
            live.update(progress_line(stats))

    try:
        result = start(tick)
    finally:
        if live:
            live.stop()
    if result.stats.stopped and not said:       # the disk filled while closing
        err.print(f"[bold red]msprof: {escape(result.stats.stopped)}[/] "
                  "(the profile keeps its tables as chunks: msprof report reads them)")
    return result


def _finish(result, err: Console) -> None:
    if result.fallback_reason:
        err.print(f"msprof: eBPF unavailable ({result.fallback_reason}); "
                  "used the in-process backend")
    summary(result, err)
    if not result.meta.get("ranks"):
        err.print(no_framework_line())
    raise typer.Exit(result.exit_status)


def no_framework_line() -> str:
    from msprof.profiler.frameworks import SUPPORTED
    return ("msprof: no instrumented framework found in the profiled processes: nothing "
            "fired msprof's probes, so the profile holds no operators or steps "
            f"(supported: {', '.join(SUPPORTED)})")


def collect(
    command: Annotated[list[str], typer.Argument(
        metavar="COMMAND", help="Command to run and profile (after --).")],
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="DIR", help="Profile directory to write.")] = None,
    backend: Annotated[Backend, typer.Option(help="auto, ebpf or inprocess.")] = Backend.auto,
    mode: Annotated[Mode, typer.Option(help="trace or summary.")] = Mode.trace,
    label: Annotated[Optional[str], typer.Option(
        metavar="NAME", help="Name of this machine in a multi-machine job.")] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No live progress.")] = False,
) -> None:
    """Profile the process tree of any COMMAND (one machine's share of a job)."""
    err = Console(stderr=True, soft_wrap=True)
    out = output or default_output()
    result = _collect(err, quiet, lambda tick: profile_command(
        command, out, backend=backend.value, nprocs=0, on_tick=tick,
        extra_meta={"node": label} if label else None, mode=mode.value))
    if not quiet:
        _finish(result, err)
    raise typer.Exit(result.exit_status)


def register(app: typer.Typer) -> None:
    # Everything after the script (or after --) belongs to the script.
    settings = {"allow_interspersed_args": False, "ignore_unknown_options": True}
    command(app, "sudo msprof run examples/lenet_digits.py --epochs 1",
            "sudo msprof run -o lenet --mode summary examples/lenet_digits.py",
            "sudo msprof run -n 4 examples/lenet_digits.py",
            "sudo msprof run -- python3 -c 'import train; train.main()'",
            "msprof run --backend inprocess examples/lenet_digits.py   # without root",
            context_settings=settings)(run)
    command(app, "sudo msprof collect -o node0 -- python3 train.py --epochs 2",
            "sudo msprof collect --label nodeA -- mpiexec -n 2 python3 train.py",
            context_settings=settings)(collect)
