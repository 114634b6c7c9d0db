"""Comparing two profiles (a baseline ``a`` and a candidate ``b``): step
time, per-operator and per-device deltas, and findings that appeared or
vanished.  Deltas are ``b - a``; ``pct`` is the delta over ``a``.

Operators match by name, type and scope (op ids may differ between runs);
devices by rank; findings by ``kind`` and ``ranks``.

When either profile is a summary-mode one (per-operator aggregates, no
kernel timeline), the step time comes from the steps table and the
operators from the summaries; the per-device breakdown and the findings,
which need kernel times, are left out and listed under ``not_recorded``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis.findings import _finding, rank_order
from msprof.analysis.units import fmt_ns

REGRESSION_FRAC = 0.05   # a step time change above this is a regression (or a gain)
_PARTS = ["step_ns", "compute_ns", "exposed_comm_ns", "bubble_ns", "host_gap_ns", "idle_ns",
          "comm_wait_ns", "mem_peak"]


NEEDS_TRACE = ["devices", "findings"]    # left out when either side is a summary


def step_times(steps: pd.DataFrame) -> pd.DataFrame:
    """Per rank, ``steps`` and the mean ``step_ns``, from the steps table
    (what :meth:`Profile.device_breakdown` reports, without the kernels)."""
    g = steps.groupby("rank")["dur_ns"]
    return pd.DataFrame({"steps": g.size(), "step_ns": g.mean()}).reset_index()


def _mean_step(devices: pd.DataFrame) -> float:
    return float(devices["step_ns"].mean()) if len(devices) else float("nan")


def step_delta(da: pd.DataFrame, db: pd.DataFrame) -> dict:
    a, b = _mean_step(da), _mean_step(db)
    return {"a_ns": a, "b_ns": b, "delta_ns": b - a, "pct": (b - a) / a if a else None}


def op_deltas(oa: pd.DataFrame, ob: pd.DataFrame) -> pd.DataFrame:
    """Per operator: ``a_ns``/``b_ns`` (time per step, all ranks' mean),
    ``delta_ns``, ``pct``, ``a_calls``/``b_calls``; largest change first.
    An operator in only one profile has the other side 0."""
    keys = ["name", "type", "scope"]
    cols = keys + ["per_step_ns", "calls", "mean_ns"]
    m = oa[cols].merge(ob[cols], on=keys, how="outer", suffixes=("_a", "_b"))
    out = pd.DataFrame({"name": m["name"], "type": m["type"], "scope": m["scope"],
                        "a_ns": m["per_step_ns_a"].fillna(0), "b_ns": m["per_step_ns_b"].fillna(0),
                        "a_calls": m["calls_a"].fillna(0).astype("int64"),
                        "b_calls": m["calls_b"].fillna(0).astype("int64"),
                        "a_mean_ns": m["mean_ns_a"], "b_mean_ns": m["mean_ns_b"]})
    out["delta_ns"] = out["b_ns"] - out["a_ns"]
    out["pct"] = (out["delta_ns"] / out["a_ns"]).where(out["a_ns"] > 0)
    order = out["delta_ns"].abs().sort_values(ascending=False, kind="stable").index
    return out.loc[order].reset_index(drop=True)


def device_deltas(da: pd.DataFrame, db: pd.DataFrame) -> pd.DataFrame:
    """Per rank, each part of the mean step in ``a``, ``b`` and the delta
    (columns ``<part>_a``, ``<part>_b``, ``<part>_delta``)."""
    parts = [p for p in _PARTS if p in da and p in db]
    m = da[["rank"] + parts].merge(db[["rank"] + parts], on="rank", how="outer",
                                   suffixes=("_a", "_b"))
    for p in parts:
        m[f"{p}_a"] = m[f"{p}_a"].astype("float64")
        m[f"{p}_b"] = m[f"{p}_b"].astype("float64")
        m[f"{p}_delta"] = m[f"{p}_b"] - m[f"{p}_a"]
    return m.sort_values("rank").reset_index(drop=True)


def _key(f: dict) -> tuple:
    return (f["kind"], tuple(f["ranks"]))


def finding_changes(fa: list[dict], fb: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(b's findings, each with "change": "appeared" or "persisted"),
    a's findings that vanished``."""
    ka = {_key(f) for f in fa}
    kb = {_key(f) for f in fb}
    now = [dict(f, change="persisted" if _key(f) in ka else "appeared") for f in fb]
    gone = [dict(f, change="vanished") for f in fa if _key(f) not in kb]
    return now, gone


def diff(a, b, top: int | None = 20) -> dict:
    """The comparison of profiles ``a`` and ``b``: ``step``, ``ops`` (the
    ``top`` largest changes), ``devices``, ``findings`` (b's, ranked, a
    ``regression``/``improvement`` first when the step time moved by more
    than :data:`REGRESSION_FRAC`) and ``vanished``.  With a summary-mode
    profile on either side, ``devices`` is absent, ``findings`` holds only
    the step-time regression or improvement, and ``not_recorded`` lists
    :data:`NEEDS_TRACE`."""
    summary = a.summary_mode or b.summary_mode
    if summary:
        da, db = step_times(a.steps), step_times(b.steps)
        now, gone = [], []
    else:
        da, db = a.device_breakdown(), b.device_breakdown()
        now, gone = finding_changes(a.findings(), b.findings())
    step = step_delta(da, db)
    ops = op_deltas(a.op_stats(), b.op_stats())
    extra = []
    pct = step["pct"]
    if pct is not None and not np.isnan(pct) and abs(pct) > REGRESSION_FRAC:
        worse = pct > 0
        drivers = ops[ops["delta_ns"] > 0] if worse else ops[ops["delta_ns"] < 0]
        names = list(drivers["name"].head(3))
        extra.append(dict(_finding(
            "regression" if worse else "improvement", "warning" if worse else "info",
            db["rank"], names, abs(step["delta_ns"]) if worse else 0,
            f"step time {fmt_ns(step['a_ns'])} -> {fmt_ns(step['b_ns'])} ({pct:+.0%})"
            + (f"; most of it in {', '.join(names)}" if names else ""),
            "compare the operators and devices below" if worse else "",
            delta_ns=step["delta_ns"]), change="appeared"))
    doc = {
        "a": {"sources": a.meta.get("sources", []), "ranks": a.ranks,
              "mode": a.meta.get("mode", "trace")},
        "b": {"sources": b.meta.get("sources", []), "ranks": b.ranks,
              "mode": b.meta.get("mode", "trace")},
        "step": step,
        "ops": ops.head(top) if top else ops,
        "devices": device_deltas(da, db),
        "findings": rank_order(extra + now),
        "vanished": gone,
    }
    if summary:
        # A summary's kernels have no times: no breakdown to compare, no
        # bottleneck found (the step-time regression above stands: steps
        # are recorded in both modes).
        del doc["devices"]
        doc["not_recorded"] = NEEDS_TRACE
    return doc
