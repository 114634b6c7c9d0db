"""The ranked list of bottlenecks ``msprof report`` ends with.

A finding is a dict with the keys of the report contract (DESIGN.md):

``kind``       short identifier (``host_bound``, ``dominant_op``, ...)
``ranks``      ranks it concerns (list of int)
``ops``        operator names it concerns, most relevant first
``impact_ns``  expected gain per step (ns) of fixing it; for an ``info``
               finding an upper bound
``message``    one sentence with the evidence

and two more: ``severity`` (``error``: the data itself is suspect;
``warning``: a bottleneck; ``info``: worth knowing, not a fault) and
``evidence`` (the numbers behind the message).  The list is ordered by
severity, then impact, largest first.  Each detector is a pure function of
DataFrames and returns a list; thresholds are the module constants below.
"""
from __future__ import annotations

import pandas as pd

from msprof.analysis.units import fmt_ns, fmt_ranks, fmt_rate

HOST_BOUND_FRAC = 0.10   # host/launch gaps above this share of the step
IDLE_FRAC = 0.30         # idle above this share of the step
IMBALANCE_FRAC = 0.10    # slowest rank's busy time above the median by this share of the step
DOMINANT_SHARE = 0.50    # one operator above this share of kernel time
TOP_OPS = 3

_SEVERITY = {"error": 0, "warning": 1, "info": 2}


def _finding(kind, severity, ranks, ops, impact_ns, message, **evidence) -> dict:
    return {
        "kind": kind, "severity": severity,
        "ranks": sorted(int(r) for r in ranks), "ops": list(ops),
        "impact_ns": int(round(impact_ns)), "message": message, "evidence": evidence,
    }


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


def host_bound(devices: pd.DataFrame, gaps: pd.DataFrame, names: dict) -> list[dict]:
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
    return [_finding(
        "host_bound", "warning", hit["rank"], ops, worst["host_gap_ns"],
        f"{fmt_ranks(hit['rank'])} host-bound: the device had nothing queued for "
        f"{worst['host_gap_frac']:.0%} of each step ({fmt_ns(worst['host_gap_ns'])}/step)"
        f"{before}",
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
        idle_frac=float(worst["idle_frac"]))]


def imbalance(devices: pd.DataFrame) -> list[dict]:
    """A rank whose kernels take notably longer per step than the median
    rank's: in synchronous training every other rank waits for it."""
    if len(devices) < 2:
        return []
    median = devices["busy_ns"].median()
    worst = devices.loc[devices["busy_ns"].idxmax()]
    excess = worst["busy_ns"] - median
    if excess < IMBALANCE_FRAC * devices["step_ns"].median():
        return []
    return [_finding(
        "slow_rank", "warning", [worst["rank"]], [], excess,
        f"rank {int(worst['rank'])} computes {fmt_ns(excess)}/step longer than the median "
        f"rank ({fmt_ns(worst['busy_ns'])} vs {fmt_ns(median)} busy per step)")]


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
    if not devices.empty:
        out += host_bound(devices, profile.gaps(rank), names)
        out += idle(devices)
        if rank is None:
            out += imbalance(devices)
    out += dominant_op(ops)
    return rank_order(out)
