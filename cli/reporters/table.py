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

from msprof.analysis.chunks import partial_note
from msprof.analysis.units import fmt_bytes, fmt_ns, fmt_rate
from msprof.cli.reporters.named_rows import NamedRows, cut_path

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
    if meta.get("attached"):
        running = meta.get("still_running") or []
        t.add_row("attached", f"to pid {', '.join(map(str, meta.get('attached_pids') or []))} "
                  "while running (steps from the first one begun under the probes)"
                  + (f"; {len(running)} still running at detach" if running else ""))
    if meta.get("exit_status") is None and meta.get("complete") is False:
        t.add_row("exit status", Text("unknown (the profile was not closed)", style="bold red"))
    elif not (meta.get("attached") and meta.get("exit_status") is None):
        status = int(meta.get("exit_status") or 0)
        t.add_row("exit status", Text(str(status), style="bold red" if status else ""))
    if meta.get("complete") is False:
        t.add_row("complete", Text(f"no, {partial_note(meta)}", style="bold red"))
    return t


def lost_banner(meta: dict) -> RenderableType | None:
    """A line that cannot be missed when events were lost."""
    lost = int(meta.get("lost_events") or 0)
    if not lost:
        return None
    return Text(f"WARNING: {lost:,} events were lost; every count and time below undercounts.",
                style="bold red")


def ops_table(ops: pd.DataFrame, estimated: bool = False) -> RenderableType:
    """Per-operator statistics, largest total first, each operator named by
    its scope path (``estimated``: the percentiles come from a summary's
    histograms, and the title says so).  No self time: a kernel runs no
    other kernel inside it, so an operator's self time is its total."""
    if not len(ops):
        return Text("Operators: no kernels recorded.", style="dim")
    rows = [(str(r.scope or r.name), f"{r.calls:,}", _ns(r.total_ns), _ns(r.p50_ns),
             _ns(r.p99_ns), _pct(r.share), fmt_rate(r.gflops))
            for r in ops.itertuples(index=False)]
    title = "Operators (kernel time" + ("; p50, p99 from histograms)" if estimated else ")")
    return NamedRows(lambda: _table(title), "operator",
                     ("calls", "total", "p50", "p99", "share", "GFLOP/s"), rows, cut=cut_path)


def not_recorded_line(sections: list[str]) -> Text:
    """What a summary-mode profile cannot show, and how to get it."""
    return Text("Summary mode: per-operator totals and histograms only; not recorded: "
                + ", ".join(sections) + " (run with --mode trace for timelines, breakdowns "
                "and findings).", style="dim")


def devices_table(devices: pd.DataFrame) -> RenderableType:
    """Per rank, the mean step: kernel time, host/launch gaps, idle, memory
    peak, and the time its compute threads waited for a busy CPU (a part of
    kernel and idle time)."""
    if not len(devices):
        return Text("Devices: no steps recorded, so no step breakdown.", style="dim")
    t = _table("Devices (mean step; kernel + host gaps + idle = step)")
    waits = "cpu_wait_ns" in devices       # seen by the eBPF backend only
    for name in ("rank", "steps", "step", "kernel", "host gaps", "idle", "mem peak") + (
            ("CPU wait",) if waits else ()):
        t.add_column(name, justify="right", no_wrap=True)
    for r in devices.itertuples(index=False):
        t.add_row(str(r.rank), str(r.steps), _ns(r.step_ns),
                  f"{_ns(r.busy_ns)} {r.busy_frac:4.0%}",
                  f"{_ns(r.host_gap_ns)} {r.host_gap_frac:4.0%}",
                  f"{_ns(r.idle_ns)} {r.idle_frac:4.0%}", _bytes(r.mem_peak),
                  *((_ns(r.cpu_wait_ns),) if waits else ()))
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


def _gbps(x) -> str:
    return fmt_rate(x)


def frame_table(title: str, df: pd.DataFrame, columns: list[tuple], limit: int = 12) -> RenderableType:
    """A table of ``df``'s first ``limit`` rows; ``columns`` are
    ``(header, column, formatter)``; the first column may be cut in its
    middle, numbers never are."""
    if df is None or not len(df):
        return Text(f"{title}: none.", style="dim")
    rows = [[fmt(getattr(r, col)) for _, col, fmt in columns]
            for r in df.head(limit).itertuples(index=False)]
    return NamedRows(lambda: _table(title), columns[0][0], [head for head, _, _ in columns[1:]], rows)


def _int(x) -> str:
    return "" if x is None or pd.isna(x) else f"{int(x):,}"


def _str(x) -> str:
    return "" if x is None or (isinstance(x, float) and pd.isna(x)) else str(x)


def breakdown_table(devices: pd.DataFrame) -> RenderableType:
    """Per rank, the mean step split into compute, exposed communication,
    pipeline bubble, host gaps and idle (they sum to the step)."""
    if not len(devices):
        return Text("Breakdown: no steps recorded.", style="dim")
    t = _table("Step breakdown (mean step; the parts sum to the step)")
    for name in ("rank", "step", "compute", "exp.comm", "bubble", "host gaps", "idle", "overlap"):
        t.add_column(name, justify="right", no_wrap=True)
    for r in devices.itertuples(index=False):
        ratio = r.overlapped_comm_ns / r.comm_ns if r.comm_ns else float("nan")
        t.add_row(str(r.rank), _ns(r.step_ns), _ns(r.compute_ns), _ns(r.exposed_comm_ns),
                  _ns(r.bubble_ns), _ns(r.host_gap_ns), _ns(r.idle_ns), _pct(ratio))
    return t


def _verdict(title: str, sec: dict) -> Text:
    return Text.assemble((f"{title}: ", "bold"), sec.get("verdict", ""))


def _summary_memory(data: dict) -> list[RenderableType]:
    """The memory section of a summary-mode profile: peaks and per-operator totals."""
    return [_verdict("Memory", data),
            frame_table("Peaks", data["peaks"], [
                ("reached by", "name", _str), ("rank", "rank", _int), ("peak", "peak", _bytes)]),
            frame_table("Memory per operator (held: not freed by the end)", data["by_op"], [
                ("operator", "name", _str), ("rank", "rank", _int), ("allocs", "allocs", _int),
                ("allocated", "alloc_bytes", _bytes), ("freed", "freed_bytes", _bytes),
                ("held", "held_bytes", _bytes)])]


# -- the first screen -------------------------------------------------------------

# One glyph per part of the step, so the bar reads without colour.
BAR_GLYPHS = {"compute": "█", "exp.comm": "▓", "bubble": "▒", "host gaps": "░", "idle": "·"}
BAR_WIDTH = 24
SHOWN_PART = 0.005      # parts under half a percent are left out of the words


def step_bar(row, width: int = BAR_WIDTH) -> str:
    """The step's parts as ``width`` characters, each part's glyph as many
    times as its share (largest remainders rounded up, so the bar is
    always ``width`` long)."""
    from msprof.analysis.overview import PARTS

    fracs = [(name, float(getattr(row, col.replace("_ns", "_frac"), 0.0) or 0.0))
             for name, col in PARTS]
    cells = [int(f * width) for _, f in fracs]
    left = width - sum(cells)
    for i in sorted(range(len(fracs)), key=lambda i: -(fracs[i][1] * width - cells[i]))[:left]:
        cells[i] += 1
    return "".join(BAR_GLYPHS[name] * n for (name, _), n in zip(fracs, cells))


def _where(row) -> str:
    from msprof.analysis.overview import PARTS

    return ", ".join(f"{name} {getattr(row, col.replace('_ns', '_frac')):.0%}"
                     for name, col in PARTS
                     if getattr(row, col.replace("_ns", "_frac"), 0) >= SHOWN_PART)


def _throughput_text(tp: dict) -> str:
    if tp.get("samples_per_s") is None:
        return ""
    return f"; {tp['samples_per_s']:,.0f} samples/s, {tp['samples_per_step']:g} per step"


def first_clause(message: str) -> str:
    """A finding's message up to its first ``; `` outside parentheses: what
    it found, without the evidence that follows."""
    depth = 0
    for i, ch in enumerate(message):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and message.startswith("; ", i):
            return message[:i]
    return message


def overview(data: dict) -> list[RenderableType]:
    """The step, where it went on each rank (a bar and its largest parts),
    the throughput, and the top findings with their gain per step."""
    ranks = data["ranks"]
    if not len(ranks):
        return [Text("Step: no steps recorded.", style="dim")]
    head = Text.assemble(("Step ", "bold"), (_ns(data["step_ns"]), "bold"),
                         f" (median of {data['steps']:,} steps, "
                         f"{len(ranks)} rank{'s' if len(ranks) > 1 else ''})"
                         + _throughput_text(data["throughput"]))
    parts: list[RenderableType] = [head]
    if "compute_frac" in ranks:
        t = _table("")
        t.add_column("rank", justify="right", no_wrap=True)
        t.add_column("step", justify="right", no_wrap=True)
        t.add_column("where the step went", no_wrap=True)
        t.add_column("", overflow="fold")
        for r in ranks.itertuples(index=False):
            t.add_row(str(r.rank), _ns(r.step_ns), step_bar(r), _where(r))
        parts += [t, Text("  ".join(f"{g} {name}" for name, g in BAR_GLYPHS.items()),
                          style="dim")]
    found = data.get("findings")
    if found is None:
        return parts
    if not found:
        return parts + ["", Text("Top findings: none; nothing stands out.", style="green")]
    t = _table("Top findings (gain per step if fixed)")
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("kind", no_wrap=True)
    t.add_column("gain", justify="right", no_wrap=True)
    t.add_column("finding", overflow="fold")
    for i, f in enumerate(found, 1):
        share = f.get("share")
        gain = (_ns(f["impact_ns"]) + (f" {share:.0%}" if share and share >= 0.005 else
                                       " <1%" if share else "")) if f["impact_ns"] else ""
        t.add_row(str(i), Text(f["kind"], style=_SEVERITY_STYLE.get(f.get("severity"), "")),
                  gain, first_clause(f["message"]))
    return parts + ["", t]


# -- the sections ----------------------------------------------------------------

def _ops_section(data, summary):
    return [ops_table(data, estimated=summary)]


def _types_section(data, summary):
    return [frame_table("Operator types", data, [
        ("type", "type", _str), ("ops", "ops", _int), ("calls", "calls", _int),
        ("total", "total_ns", _ns), ("share", "share", _pct), ("GFLOP/s", "gflops", fmt_rate),
        ("GB/s", "gbps", fmt_rate)])]


def _scope_name(scope) -> str:
    return _str(scope) or "(all)"        # the root: every operator's kernels


def _scopes_section(data, summary):
    return [frame_table("Scopes (subtree time)", data.sort_values("total_ns", ascending=False), [
        ("scope", "scope", _scope_name), ("calls", "calls", _int), ("total", "total_ns", _ns),
        ("self", "self_ns", _ns), ("share", "share", _pct)])]


def _devices_section(data, summary):
    # Without communication or a pipeline the breakdown's parts are the
    # devices table's kernel, host gaps and idle: said once.
    split = any((data[c] > 0).any() for c in ("comm_ns", "bubble_ns") if c in data)
    return [devices_table(data)] + (["", breakdown_table(data)] if split else [])


def _steps_section(data, summary):
    return [steps_table(data)]


def _comm_section(data, summary):
    parts = [_verdict("Communication", data), frame_table("Collectives (per kind and size)", data["collectives"], [
        ("kind", "kind", _str), ("size", "bytes", _bytes), ("count", "count", _int),
        ("time", "time_ns", _ns), ("wait", "wait_ns", _ns), ("skew", "skew_ns", _ns),
        ("algbw", "algbw", _gbps), ("busbw", "busbw", _gbps)]),
        frame_table("Communication matrix (GB/s)", data["matrix"], [
            ("src", "src", _int), ("dst", "dst", _int), ("bytes", "bytes", _bytes),
            ("time", "time_ns", _ns), ("GB/s", "gbps", _gbps)])]
    if "ops" in data:       # exposure needs kernel times: not in a summary
        parts.append(frame_table("Communication ops (per step)", data["ops"], [
            ("op", "name", _str), ("time", "dur_ns", _ns), ("exposed", "exposed_ns", _ns),
            ("wait", "wait_ns", _ns), ("transfer", "transfer_ns", _ns)]))
    return parts


IMBALANCED_STEPS = 5     # the per-step table lists the most imbalanced steps only


def _imbalance_section(data, summary):
    ranked = data["ranks"]
    where = [("ran on CPU", "cpus", _str)] if "cpus" in ranked else []
    steps = data["steps"]
    if len(steps) > IMBALANCED_STEPS:
        steps = steps.sort_values("imbalance", ascending=False, kind="stable").head(IMBALANCED_STEPS)
    return [_verdict("Imbalance", data), frame_table("Ranks (per step)", ranked, [
        ("rank", "rank", _int), ("compute", "compute_ns", _ns), ("excess", "excess_ns", _ns),
        ("waits", "wait_ns", _ns), ("makes wait", "caused_wait_ns", _ns)] + where),
        frame_table("Load imbalance per step" if len(steps) == len(data["steps"]) else
                    f"Load imbalance, the {len(steps)} most imbalanced steps", steps, [
            ("step", "step", _int), ("max", "compute_max_ns", _ns),
            ("mean", "compute_mean_ns", _ns), ("slowest", "slowest_rank", _int),
            ("index", "imbalance", _pct)])]


def _pipeline_section(data, summary):
    return [_verdict("Pipeline", data), frame_table("Stages (per step)", data["stages"], [
        ("stage", "stage", _int), ("rank", "rank", _int), ("step", "step_ns", _ns),
        ("bubble", "bubble_ns", _ns), ("ratio", "bubble_ratio", _pct), ("fill", "fill_ns", _ns),
        ("drain", "drain_ns", _ns), ("steady", "steady_ns", _ns),
        ("schedule", "schedule_ratio", _pct), ("ideal", "ideal_ratio", _pct)])]


def _memory_section(data, summary):
    if "by_op" in data:
        return _summary_memory(data)
    return [_verdict("Memory", data), frame_table("Peaks", data["peaks"], [
        ("rank", "rank", _int), ("peak", "peak", _bytes), ("live blocks", "live_blocks", _int),
        ("final", "final", _bytes)]),
        frame_table("Live at the peak", data["live_at_peak"], [
            ("operator", "name", _str), ("rank", "rank", _int), ("blocks", "blocks", _int),
            ("bytes", "bytes", _bytes), ("share", "share", _pct)], limit=8),
        frame_table("Never freed", data["never_freed"], [
            ("operator", "name", _str), ("rank", "rank", _int), ("blocks", "blocks", _int),
            ("bytes", "bytes", _bytes), ("per step", "per_step", _bytes),
            ("leak", "leak", lambda x: "LEAK" if x else "")], limit=8)]


def _hostbound_section(data, summary):
    return [_verdict("Host-bound", data), frame_table("Launches per rank", data["ranks"], [
        ("rank", "rank", _int), ("launch", "launch_cost_ns", _ns), ("kernels", "kernels", _int),
        ("tiny", "tiny_share", _pct), ("queue p50", "queue_p50_ns", _ns),
        ("host gap", "host_gap_ns", _ns)]),
        frame_table("Host gaps before", data["gaps"], [
            ("operator", "name", _str), ("gaps", "gaps", _int), ("per step", "per_step_ns", _ns)],
            limit=8)]


def _critical_path_section(data, summary):
    title = f"Critical path of step {data['step']}" if data.get("step") is not None else "Critical path"
    return [_verdict("Critical path", data), frame_table(title, data["summary"], [
        ("kind", "kind", _str), ("rank", "rank", _int), ("time", "dur_ns", _ns),
        ("share", "share", _pct)]),
        frame_table("On the path", data["ops"], [
            ("operator", "name", _str), ("kind", "kind", _str), ("time", "dur_ns", _ns),
            ("share", "share", _pct)], limit=8)]


def _findings_section(data, summary):
    return [findings_table(data)]


RENDERERS = {
    "overview": lambda data, summary: overview(data),
    "ops": _ops_section, "types": _types_section, "scopes": _scopes_section,
    "devices": _devices_section, "steps": _steps_section, "comm": _comm_section,
    "imbalance": _imbalance_section, "pipeline": _pipeline_section, "memory": _memory_section,
    "hostbound": _hostbound_section, "critical_path": _critical_path_section,
    "findings": _findings_section,
}


def _rows(df) -> int:
    return 0 if df is None else len(df)


# When a section has nothing to show: the part of it that would be empty,
# and the few words that say why it is left out.  Sections not listed are
# always shown (the findings say "none" themselves).
EMPTY = {
    "ops": lambda d: _rows(d) == 0,
    "types": lambda d: _rows(d) == 0,
    "scopes": lambda d: _rows(d) == 0,
    "devices": lambda d: _rows(d) == 0,
    "steps": lambda d: _rows(d) == 0,
    "comm": lambda d: _rows(d["collectives"]) == 0,
    "imbalance": lambda d: _rows(d["ranks"]) < 2,
    "pipeline": lambda d: _rows(d["stages"]) == 0,
    "memory": lambda d: _rows(d["peaks"]) == 0,
    "hostbound": lambda d: _rows(d["ranks"]) == 0,
    # One rank: its critical path is its step, which the overview shows.
    "critical_path": lambda d: _rows(d["path"]) == 0 or d.get("ranks", 2) < 2,
}

LEFT_OUT_WHY = {"comm": "communication (no collectives)", "imbalance": "imbalance (one rank)",
                "pipeline": "pipeline (no stages)", "memory": "memory (no pool events)",
                "critical_path": "critical path (one rank)"}


def is_empty(name: str, data) -> bool:
    """Whether section ``name`` has nothing to show (:data:`EMPTY`)."""
    test = EMPTY.get(name)
    return bool(test and test(data))


def section(name: str, data, summary: bool = False) -> list[RenderableType]:
    """The renderables of one report section (``summary``: of a summary-mode
    profile)."""
    render_one = RENDERERS.get(name)
    return render_one(data, summary) if render_one else []


def render(doc: dict, console: Console, steps: bool = False) -> None:
    """Prints the report ``doc`` (from :func:`msprof.analysis.report.build`):
    the header, then every section it holds (``steps`` only when asked
    for, or when it is the only section).  A section with nothing to show
    is left out, and one line at the end names the sections left out."""
    from msprof.analysis.report import SECTIONS

    parts: list[RenderableType] = [header(doc["meta"], doc.get("rank"))]
    banner = lost_banner(doc["meta"])
    if banner is not None:
        parts.append(banner)
    summary = doc["meta"].get("mode") == "summary"
    if doc.get("not_recorded"):
        parts += ["", not_recorded_line(doc["not_recorded"])]
    for note in doc.get("framework_notes", []):
        parts += ["", Text(note, style="dim")]
    present = [s for s in SECTIONS if s in doc]
    left_out = []
    for name in present:
        if name == "steps" and not steps and len(present) > 1:
            continue
        if is_empty(name, doc[name]):
            left_out.append(LEFT_OUT_WHY.get(name, name))
            continue
        parts.append("")
        parts += section(name, doc[name], summary=summary)
    if left_out:
        parts += ["", Text("Nothing to show: " + ", ".join(left_out) + ".", style="dim")]
    console.print(Group(*parts))
