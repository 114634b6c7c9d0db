"""``--format table``: the report as rich tables.

Every ``*_table`` function builds a renderable from data and prints
nothing; :func:`render` prints them, in order, to the Console it is given
(colour follows the Console: none in a pipe or with NO_COLOR).
"""
from __future__ import annotations

import pandas as pd
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from msprof.analysis.units import fmt_bytes, fmt_ns, fmt_rate

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                 padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False)


def _ns(ns) -> str:
    return fmt_ns(ns, sep="")


def _bytes(n) -> str:
    return fmt_bytes(n, sep="")


def _pct(x) -> str:
    return "" if x is None or pd.isna(x) else f"{x:.1%}"


def header(meta: dict, rank: int | None = None) -> Table:
    """Command, backend, mode, ranks, events, lost events, exit status."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    command = meta.get("command") or []
    t.add_row("command", " ".join(map(str, command)) if isinstance(command, list) else str(command))
    t.add_row("profile", ", ".join(meta.get("sources") or []))
    backend = f"{meta.get('backend', '?')}, mode {meta.get('mode', '?')}"
    if meta.get("fallback_reason"):
        backend += f" (fell back: {meta['fallback_reason']})"
    t.add_row("backend", backend)
    ranks = [r.get("rank") for r in meta.get("ranks") or [] if isinstance(r, dict)]
    hosts = sorted({str(r.get("host")) for r in meta.get("ranks") or [] if isinstance(r, dict)
                    and r.get("host") is not None}) or [str(meta.get("host", "?"))]
    shown = f"  (showing rank {rank})" if rank is not None else ""
    t.add_row("ranks", f"{len(ranks)} on {', '.join(hosts)}{shown}")
    if "start_ns" in meta and "end_ns" in meta:
        t.add_row("duration", fmt_ns(meta["end_ns"] - meta["start_ns"]))
    lost = int(meta.get("lost_events") or 0)
    events = f"{int(meta.get('events') or 0):,} recorded, "
    if lost:
        causes = ", ".join(f"{c} {n:,}" for c, n in (meta.get("lost_by_cause") or {}).items() if n)
        t.add_row("events", Text.assemble(events, (f"{lost:,} LOST", "bold red"),
                                          f" ({causes})" if causes else ""))
    else:
        t.add_row("events", events + "0 lost")
    status = int(meta.get("exit_status") or 0)
    t.add_row("exit status", Text(str(status), style="bold red" if status else ""))
    if meta.get("complete") is False:
        t.add_row("complete", Text("no (collection did not finish)", style="bold red"))
    return t


def lost_banner(meta: dict) -> RenderableType | None:
    """A line that cannot be missed when events were lost."""
    lost = int(meta.get("lost_events") or 0)
    if not lost:
        return None
    return Text(f"WARNING: {lost:,} events were lost; every count and time below undercounts.",
                style="bold red")


def ops_table(ops: pd.DataFrame) -> RenderableType:
    """Per-operator statistics, largest total first."""
    if not len(ops):
        return Text("Operators: no kernels recorded.", style="dim")
    t = _table("Operators (kernel time)")
    rows = [(str(r.name), f"{r.calls:,}", _ns(r.total_ns), _ns(r.self_ns), _ns(r.mean_ns),
             _ns(r.p50_ns), _ns(r.p99_ns), _pct(r.share), fmt_rate(r.gflops))
            for r in ops.itertuples(index=False)]
    # Numbers are never cut: each numeric column is as wide as its widest
    # cell, and the operator name takes what is left (cut with an ellipsis).
    t.add_column("operator", overflow="ellipsis", min_width=10)
    names = ("calls", "total", "self", "mean", "p50", "p99", "share", "GFLOP/s")
    for i, name in enumerate(names, start=1):
        width = max([len(name)] + [len(row[i]) for row in rows])
        t.add_column(name, justify="right", no_wrap=True, min_width=width)
    for row in rows:
        t.add_row(*row)
    return t


def devices_table(devices: pd.DataFrame) -> RenderableType:
    """Per rank, the mean step: kernel time, host/launch gaps, idle, memory peak."""
    if not len(devices):
        return Text("Devices: no steps recorded, so no step breakdown.", style="dim")
    t = _table("Devices (mean step; kernel + host gaps + idle = step)")
    for name in ("rank", "steps", "step", "kernel", "host gaps", "idle", "mem peak"):
        t.add_column(name, justify="right", no_wrap=True)
    for r in devices.itertuples(index=False):
        t.add_row(str(r.rank), str(r.steps), _ns(r.step_ns),
                  f"{_ns(r.busy_ns)} {r.busy_frac:4.0%}",
                  f"{_ns(r.host_gap_ns)} {r.host_gap_frac:4.0%}",
                  f"{_ns(r.idle_ns)} {r.idle_frac:4.0%}", _bytes(r.mem_peak))
    return t


def steps_table(steps: pd.DataFrame) -> Table:
    """Per rank and step: the same breakdown, step by step."""
    t = _table("Steps")
    for name in ("rank", "step", "time", "kernel", "host gaps", "idle", "queued", "mem peak"):
        t.add_column(name, justify="right", no_wrap=True)
    for r in steps.itertuples(index=False):
        t.add_row(str(r.rank), str(r.step), _ns(r.step_ns), _ns(r.busy_ns),
                  _ns(r.host_gap_ns), _ns(r.idle_ns), _ns(r.queued_ns), _bytes(r.mem_peak))
    return t


def findings_table(findings: list[dict]) -> RenderableType:
    """The ranked findings, or a line saying there are none."""
    if not findings:
        return Text("Findings: none; nothing stands out.", style="green")
    t = _table("Findings (most important first)")
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("kind", no_wrap=True)
    t.add_column("gain/step", justify="right", no_wrap=True)
    t.add_column("finding", overflow="fold")
    for i, f in enumerate(findings, 1):
        style = _SEVERITY_STYLE.get(f.get("severity"), "")
        t.add_row(str(i), Text(f["kind"], style=style),
                  _ns(f["impact_ns"]) if f["impact_ns"] else "", f["message"])
    return t


def render(doc: dict, console: Console, steps: bool = False) -> None:
    """Prints the report ``doc`` (from :func:`msprof.analysis.report.build`)."""
    parts: list[RenderableType] = [header(doc["meta"], doc.get("rank"))]
    banner = lost_banner(doc["meta"])
    if banner is not None:
        parts.append(banner)
    parts += ["", ops_table(doc["ops"]), "", devices_table(doc["devices"])]
    if steps:
        parts += ["", steps_table(doc["steps"])]
    parts += ["", findings_table(doc["findings"])]
    console.print(Group(*parts))
