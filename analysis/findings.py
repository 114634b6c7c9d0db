"""The ranked list of bottlenecks ``msprof report`` ends with.

A finding is a dict with the keys of the report contract (DESIGN.md):

``kind``       short identifier (``host_bound``, ``dominant_op``, ...)
``ranks``      ranks it concerns (list of int)
``ops``        operator names it concerns, most relevant first
``impact_ns``  expected gain per step (ns) of fixing it; for an ``info``
               finding an upper bound
``message``    one sentence with the evidence

and three more: ``severity`` (``error``: the data itself is suspect, or
the run is broken (a memory leak); ``warning``: a bottleneck; ``info``:
worth knowing, not a fault), ``evidence`` (the numbers behind the
message) and ``recommendation`` (what to try).  Each ``impact_ns`` is a
what-if computed from the profile (the step time the fix would save).  The list is ordered by
severity, then impact, largest first.  Each detector is a pure function of
DataFrames and returns a list; thresholds are the module constants below.
"""
from __future__ import annotations

import pandas as pd

from msprof.analysis.units import fmt_ns, fmt_ranks, fmt_rate

HOST_BOUND_FRAC = 0.10   # host/launch gaps above this share of the step
IDLE_FRAC = 0.30         # idle above this share of the step
IMBALANCE_FRAC = 0.10    # slowest rank's compute above the others' median by this share of the step
EXPOSED_COMM_FRAC = 0.10  # exposed transfer time above this share of the step
BUBBLE_FRAC = 0.15       # pipeline bubble above this share of the step
TINY_SHARE = 0.5         # more than this share of kernels shorter than their launch cost
DOMINANT_SHARE = 0.50    # one operator above this share of kernel time
TOP_OPS = 3

_SEVERITY = {"error": 0, "warning": 1, "info": 2}


def _finding(kind, severity, ranks, ops, impact_ns, message, recommendation="",
             **evidence) -> dict:
    return {
        "kind": kind, "severity": severity,
        "ranks": sorted(int(r) for r in ranks), "ops": list(ops),
        "impact_ns": int(round(impact_ns)), "message": message,
        "recommendation": recommendation,
        "evidence": {k: _plain(v) for k, v in evidence.items()},
    }


def _plain(v):
    """numpy scalars to Python ones, so a finding serialises as JSON."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v.item() if hasattr(v, "item") else v


def _pct(part, whole) -> str:
    return f"{part / whole:.0%}" if whole else "?"


def data_quality(meta: dict) -> list[dict]:
    """Lost events, an unfinished profile, failed ranks."""
    out = []
    lost = int(meta.get("lost_events") or 0)
    if lost > 0:
        events = int(meta.get("events") or 0)
        causes = meta.get("lost_by_cause") or {}
        why = ", ".join(f"{c}: {n}" for c, n in causes.items() if n) or "cause not recorded"
        share = f" ({lost / (lost + events):.1%} of all)" if events else ""
        out.append(_finding(
            "lost_events", "error", [], [], 0,
            f"{lost} events were lost{share} ({why}); counts and times undercount",
            lost_events=lost, lost_by_cause=causes))
    if meta.get("complete") is False:
        out.append(_finding(
            "incomplete", "error", [], [], 0,
            "the profile was not closed cleanly (collection interrupted); its last "
            "events may be missing"))
    failed = meta.get("failed_ranks") or []
    if failed:
        ranks = [f.get("rank", -1) for f in failed if isinstance(f, dict)]
        codes = sorted({f.get("exit_status") for f in failed if isinstance(f, dict)} - {None})
        out.append(_finding(
            "failed_ranks", "error", ranks, [], 0,
            f"{fmt_ranks(ranks)} exited with status {', '.join(map(str, codes)) or '?'}"))
    return out


def host_bound(devices: pd.DataFrame, gaps: pd.DataFrame, names: dict,
               host: pd.DataFrame | None = None) -> list[dict]:
    """Ranks whose device waited on the host for a large share of the step.

    ``gaps`` from :func:`msprof.analysis.breakdown.gaps`; ``names`` maps
    (rank, op_id) to operator names.  The operators named are those whose
    kernels most often ended such a wait (launched late)."""
    hit = devices[devices["host_gap_frac"] >= HOST_BOUND_FRAC]
    if hit.empty:
        return []
    g = gaps[gaps["rank"].isin(hit["rank"]) & (gaps["host_ns"] > 0)]
    by_op = g.groupby(["rank", "next_op_id"])["host_ns"].sum().reset_index()
    by_op["name"] = [names.get((r, o), f"op{o}") for r, o in zip(by_op["rank"], by_op["next_op_id"])]
    top = by_op.groupby("name")["host_ns"].sum().sort_values(ascending=False, kind="stable")
    ops = list(top.index[:TOP_OPS])
    worst = hit.loc[hit["host_gap_ns"].idxmax()]
    before = f"; longest before {', '.join(ops)}" if ops else ""
    tiny = ""
    if host is not None and len(host) and host["kernels"].sum():
        h = host[host["rank"].isin(hit["rank"])]
        share = h["tiny"].sum() / max(h["kernels"].sum(), 1)
        if share >= TINY_SHARE:
            tiny = (f"; {share:.0%} of kernels are shorter than the "
                    f"{fmt_ns(h['launch_cost_ns'].median())} it takes to launch one")
    return [_finding(
        "host_bound", "warning", hit["rank"], ops, worst["host_gap_ns"],
        f"{fmt_ranks(hit['rank'])} host-bound: the device had nothing queued for "
        f"{worst['host_gap_frac']:.0%} of each step ({fmt_ns(worst['host_gap_ns'])}/step)"
        f"{before}{tiny}; removing the launch gaps: -{fmt_ns(worst['host_gap_ns'])}/step "
        f"(-{worst['host_gap_frac']:.0%})",
        "fuse the small operators or batch more work per kernel, and move host work "
        "(data loading, Python per step) off the launch path",
        host_gap_frac=float(worst["host_gap_frac"]))]


def idle(devices: pd.DataFrame) -> list[dict]:
    """Ranks idle (launched work waiting, or nothing after the last kernel)
    for a large share of the step."""
    hit = devices[devices["idle_frac"] >= IDLE_FRAC]
    if hit.empty:
        return []
    worst = hit.loc[hit["idle_ns"].idxmax()]
    queued = worst["queued_ns"] / worst["idle_ns"] if worst["idle_ns"] else 0.0
    return [_finding(
        "device_idle", "warning", hit["rank"], [], worst["idle_ns"],
        f"{fmt_ranks(hit['rank'])} idle {worst['idle_frac']:.0%} of each step "
        f"({fmt_ns(worst['idle_ns'])}/step, {queued:.0%} of it with work queued: "
        f"waiting on dependencies, other streams or synchronisation)",
        "look for synchronisation points (host reads of device values, step-end "
        "barriers) and dependencies that serialise the streams",
        idle_frac=float(worst["idle_frac"]))]


def slow_rank(ranks: pd.DataFrame, devices: pd.DataFrame) -> list[dict]:
    """A rank whose compute per step exceeds the other ranks' median: in
    synchronous training every other rank waits for it at the next
    collective.  What-if: that rank computing like the others saves its
    excess (``ranks`` from :func:`msprof.analysis.imbalance.ranks`)."""
    if len(ranks) < 2 or devices.empty:
        return []
    worst = ranks.iloc[0]
    step = devices["step_ns"].median()
    excess = float(worst["excess_ns"])
    if excess < IMBALANCE_FRAC * step:
        return []
    r = int(worst["rank"])
    others = ranks[ranks["rank"] != r]["compute_ns"].median()
    waited = float(worst["caused_wait_ns"])
    wait = (f"; each other rank waits {fmt_ns(waited)}/step for it in collectives"
            if waited > 0 else "")
    return [_finding(
        "slow_rank", "warning", [r], [], excess,
        f"rank {r} computes {fmt_ns(worst['compute_ns'])}/step vs {fmt_ns(others)} on the "
        f"other ranks (+{_pct(excess, others)}){wait}; rank {r} at the others' speed: "
        f"-{fmt_ns(excess)}/step (-{_pct(excess, step)})",
        f"find out why rank {r} is slower (its host or device, data it gets, a shard "
        "that is bigger than the others)",
        compute_ns=float(worst["compute_ns"]), others_ns=float(others),
        caused_wait_ns=waited)]


def exposed_comm(by_op: pd.DataFrame, devices: pd.DataFrame, steps: pd.DataFrame) -> list[dict]:
    """Communication that no compute hides.  What-if per operator (e.g. one
    bucket's allreduce): perfect overlap saves its exposed transfer time
    (waits for other ranks excluded) on the rank where it is smallest,
    since every rank must leave a collective together.  ``by_op`` per rank
    from :func:`msprof.analysis.comm.by_op` (column ``rank``)."""
    if by_op.empty or devices.empty:
        return []
    per = by_op.groupby("name").agg(transfer_ns=("transfer_ns", "min"),
                                     exposed_ns=("exposed_ns", "mean"),
                                     kind=("type", "first")).sort_values(
        "transfer_ns", ascending=False, kind="stable")
    total = float(per["transfer_ns"].sum())
    step = float(devices["step_ns"].mean())
    if total < EXPOSED_COMM_FRAC * step:
        return []
    top = per.index[0]
    gain = float(per["transfer_ns"].iloc[0])
    ops = [n for n in per.index[:TOP_OPS] if per.loc[n, "transfer_ns"] > 0]
    return [_finding(
        "exposed_comm", "warning", devices["rank"], ops, total,
        f"communication exposed {fmt_ns(total)}/step ({_pct(total, step)} of the step) with "
        f"no compute to hide it; perfect overlap of {top}: -{fmt_ns(gain)}/step "
        f"(-{_pct(gain, step)})",
        "overlap it with compute: issue it earlier (smaller or reordered buckets), "
        "or move independent compute next to it",
        per_op={n: float(v) for n, v in per["transfer_ns"].head(TOP_OPS).items()})]


def comm_bound(devices: pd.DataFrame, by_op: pd.DataFrame, kinds: set) -> list[dict]:
    """Parallel-strategy hint: in data parallel, communication per step
    longer than compute per step means the job is communication-bound at
    this size."""
    if by_op.empty or devices.empty or "allreduce" not in kinds or kinds & {"send", "recv"}:
        return []
    comm = by_op.groupby("rank")["dur_ns"].sum() - by_op.groupby("rank")["wait_ns"].sum()
    compute = devices.set_index("rank")["compute_ns"]
    ratio = (comm / compute.reindex(comm.index)).median()
    if not ratio > 1:
        return []
    exposed = float(devices["exposed_comm_ns"].mean() - devices["comm_wait_ns"].mean())
    return [_finding(
        "strategy", "info", devices["rank"], [], max(exposed, 0.0),
        f"data parallel is communication-bound at this size: gradient allreduce takes "
        f"{ratio:.1f}x the compute of a step ({fmt_ns(comm.median())} vs "
        f"{fmt_ns(compute.median())}/step)",
        "raise the work per rank (bigger batch per rank, gradient accumulation), use "
        "fewer ranks, or shard the model (operator or pipeline parallel) instead",
        comm_to_compute=float(ratio))]


def slow_link(links: pd.DataFrame, groups: pd.DataFrame, steps_per_rank: float) -> list[dict]:
    """A pair of ranks (or a group) whose bandwidth is far below the others'.
    What-if: that link at the median bandwidth."""
    out = []
    hit = links[links["slow"]] if len(links) else links
    for r in hit.head(1).itertuples(index=False):
        gain = r.time_ns * (1 - r.ratio) / max(steps_per_rank, 1)
        out.append(_finding(
            "slow_link", "warning", [r.src, r.dst], [], gain,
            f"link rank {r.src} -> rank {r.dst} moves {r.gbps:.3g} GB/s, {r.ratio:.0%} of the "
            f"median pair; at the median: -{fmt_ns(gain)}/step",
            "check that link (NIC, cabling, placement across hosts/sockets) or map the "
            "heaviest traffic off it",
            gbps=float(r.gbps), ratio=float(r.ratio)))
    ghit = groups[groups["slow"]] if len(groups) else groups
    for r in ghit.head(1).itertuples(index=False):
        gain = r.time_ns * (1 - r.ratio) / max(steps_per_rank, 1)
        ranks = [int(x) for x in str(r.members).split(",") if x]
        out.append(_finding(
            "slow_link", "warning", ranks, [], gain,
            f"group {r.group} ({fmt_ranks(ranks)}) reaches {r.busbw:.3g} GB/s bus bandwidth in "
            f"{r.kind}, {r.ratio:.0%} of other groups; at their speed: -{fmt_ns(gain)}/step",
            "check the links between these ranks",
            busbw=float(r.busbw), ratio=float(r.ratio)))
    return out


def pipeline_bubble(stages: pd.DataFrame) -> list[dict]:
    """A pipeline whose stages sit idle waiting on each other.  What-if:
    the bottleneck stage (most compute) without its bubble; and the GPipe
    bubble with twice the micro-batches."""
    if stages.empty or stages["bubble_ratio"].max() < BUBBLE_FRAC:
        return []
    neck = stages.loc[stages["compute_ns"].idxmax()]
    worst = stages.loc[stages["bubble_ratio"].idxmax()]
    p, m = len(stages), worst["micro_batches"]
    steady = stages["steady_ns"].sum() / max(stages["bubble_ns"].sum(), 1)
    if steady > 0.5:
        slow = stages.loc[stages["compute_ns"].idxmax()]
        cause = (f"mostly steady-state waits: stage {int(slow['stage'])} computes "
                 f"{fmt_ns(slow['compute_ns'])}/step vs {fmt_ns(stages['compute_ns'].median())} "
                 f"median (stage imbalance)")
        rec = "rebalance the layers across stages"
    else:
        twice = (p - 1) / (2 * m + p - 1) if m == m else float("nan")
        cause = (f"mostly fill and drain of the schedule (GPipe ideal "
                 f"{worst['ideal_ratio']:.0%} with {m:.0f} micro-batches; {twice:.0%} with "
                 f"{2 * m:.0f})")
        rec = "use more micro-batches per step (or an interleaved/1F1B schedule)"
    gain = float(neck["bubble_ns"])
    return [_finding(
        "pipeline_bubble", "warning", stages["rank"], [], gain,
        f"pipeline bubble {worst['bubble_ratio']:.0%} of the step on stage "
        f"{int(worst['stage'])} ({fmt_ns(worst['bubble_ns'])}/step), {cause}; without the "
        f"bottleneck stage's bubble: -{fmt_ns(gain)}/step "
        f"(-{_pct(gain, neck['step_ns'])})",
        rec, bubble_ratio=float(worst["bubble_ratio"]), steady_share=float(steady))]


def memory_leak(nf: pd.DataFrame) -> list[dict]:
    """Operators that leave never-freed blocks behind every step."""
    leaks = nf[nf["leak"]] if len(nf) else nf
    if leaks.empty:
        return []
    by = leaks.groupby("name").agg(per_step=("per_step", "sum"), bytes=("bytes", "sum"),
                                   scope=("scope", "first")).sort_values(
        "per_step", ascending=False, kind="stable")
    top = by.index[0]
    where = f" ({by['scope'].iloc[0]})" if by["scope"].iloc[0] else ""
    return [_finding(
        "memory_leak", "error", leaks["rank"].unique(), list(by.index[:TOP_OPS]), 0,
        f"memory leak on {fmt_ranks(leaks['rank'])}: {top}{where} allocates "
        f"{by['per_step'].iloc[0]:,.0f} bytes/step never freed ({by['bytes'].sum():,} bytes "
        "in all); the pool will run out",
        "free (or reuse) the buffer the operator allocates each step",
        bytes_per_step=float(by["per_step"].sum()))]


def dominant_op(ops: pd.DataFrame) -> list[dict]:
    """One operator taking most of the kernel time: where optimisation pays."""
    if ops.empty:
        return []
    top = ops.iloc[0]
    if top["share"] < DOMINANT_SHARE or len(ops) < 2:
        return []
    per_step = top["per_step_ns"] if pd.notna(top["per_step_ns"]) else 0
    details = ([f"{fmt_ns(per_step)}/step"] if per_step else []) + (
        [f"{fmt_rate(top['gflops'])} GFLOP/s"] if pd.notna(top["gflops"]) else [])
    return [_finding(
        "dominant_op", "info", [], [top["name"]], per_step,
        f"{top['name']} ({top['type']}) takes {top['share']:.0%} of kernel time"
        + (f" ({', '.join(details)})" if details else ""),
        "optimise this operator first",
        share=float(top["share"]))]


def rank_order(items: list[dict]) -> list[dict]:
    """Most important first: severity, then impact."""
    return sorted(items, key=lambda f: (_SEVERITY.get(f["severity"], 9), -f["impact_ns"]))


def findings(profile, rank: int | None = None) -> list[dict]:
    """All detectors over one profile (optionally one rank), ranked."""
    devices = profile.device_breakdown(rank)
    ops = profile.op_stats(rank)
    reg = profile.ops.drop_duplicates(["rank", "op_id"], keep="last")
    names = dict(zip(zip(reg["rank"].tolist(), reg["op_id"].tolist()), reg["name"]))
    out = data_quality(profile.meta)
    out += memory_leak(profile.leaks(rank))
    if not devices.empty:
        out += host_bound(devices, profile.gaps(rank), names, profile.host_summary(rank))
        out += idle(devices)
        comms = profile.comms
        if rank is None:
            out += slow_rank(profile.slow_ranks(), devices)
            out += slow_link(profile.links(), profile.groups(), devices["steps"].median())
            out += pipeline_bubble(profile.pipeline())
        if len(comms):
            per_rank = profile.comm_ops_per_rank(rank)
            out += exposed_comm(per_rank, devices, profile.steps)
            out += comm_bound(devices, per_rank, set(comms["kind"].unique()))
    out += dominant_op(ops)
    return rank_order(out)
