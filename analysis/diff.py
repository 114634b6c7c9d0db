"""Comparing two profiles (a baseline ``a`` and a candidate ``b``): step
time and throughput, per-operator and per-device deltas, and findings that
appeared or vanished.  Deltas are ``b - a``; ``pct`` is the delta over
``a``.

Steps are compared by their typical (median) duration, the step the
findings judge (:mod:`msprof.analysis.throughput`).  When both profiles
know the samples each step trained on, the verdict follows the time per
sample (throughput): a run at batch 128 whose steps last 2.2x those of a
run at batch 32 is an improvement, not a regression; and the operators
are then compared per sample too.  Without samples on both sides, steps
are compared as they are, and the document says so when the step counts
differ.

Operators match by the cell path of their scope and their type, the n-th
operator of a type in a cell matching the n-th (in op id order): op ids,
and the names that carry them (``Conv2D-op9``), shift when a layer is
added; devices match by rank; findings by ``kind`` and ``ranks``.

When either profile is a summary-mode one (per-operator aggregates, no
kernel timeline), the per-device breakdown and the findings, which need
kernel times, are left out and listed under ``not_recorded``.
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from msprof.analysis.findings import _finding, rank_order, typical_steps
from msprof.analysis.opstats import scope_path
from msprof.analysis.throughput import throughput
from msprof.analysis.units import fmt_ns

# A change of the time per step (or per sample) above this is a regression (or a gain).
REGRESSION_FRAC = 0.05
_PARTS = ["step_ns", "compute_ns", "exposed_comm_ns", "bubble_ns", "host_gap_ns", "idle_ns",
          "comm_wait_ns", "mem_peak"]


NEEDS_TRACE = ["devices", "memory", "findings"]    # left out when either side is a summary


def step_delta(a_ns: float | None, b_ns: float | None) -> dict:
    """The typical steps of both sides and their change (None where a
    side has no steps)."""
    both = a_ns is not None and b_ns is not None
    return {"a_ns": a_ns, "b_ns": b_ns, "delta_ns": b_ns - a_ns if both else None,
            "pct": (b_ns - a_ns) / a_ns if both and a_ns else None}


def basis(ta: dict, tb: dict) -> tuple[str, str]:
    """``("sample" | "step", why)``: per sample when both sides know their
    samples per step, else per step; ``why`` says what differs ("" when
    nothing does)."""
    known = ta["samples_per_step"] is not None and tb["samples_per_step"] is not None
    why = []
    if known and ta["samples_per_step"] != tb["samples_per_step"]:
        why.append(f"batch {ta['samples_per_step']:g} -> {tb['samples_per_step']:g}")
    if ta["steps"] != tb["steps"]:
        why.append(f"{ta['steps']} -> {tb['steps']} steps")
    if known:
        return "sample", ("; ".join(why) + ": compared per sample") if why else ""
    if why:
        return "step", "; ".join(why) + ": samples per step unknown, compared per step"
    return "step", ""


def match_keys(ops: pd.DataFrame) -> pd.DataFrame:
    """``ops`` (rows of :func:`op_stats`) with ``path`` (the scope's cell
    path) and ``nth`` (the operator's place among those of its type in its
    cell, by op id): the key two runs' operators match on."""
    out = ops.copy()
    out["path"] = scope_path(out["scope"], out["name"]) if len(out) else pd.Series(dtype=object)
    out["nth"] = (out.sort_values("op_id", kind="stable").groupby(["path", "type"]).cumcount()
                  .reindex(out.index) if len(out) else pd.Series(dtype="int64"))
    return out


def op_deltas(oa: pd.DataFrame, ob: pd.DataFrame, per_a: float = 1.0,
              per_b: float = 1.0) -> pd.DataFrame:
    """Per operator (matched by :func:`match_keys`): ``a_ns``/``b_ns`` (time
    per step, all ranks' mean, divided by ``per_a``/``per_b``: the samples
    per step when comparing per sample), ``delta_ns``, ``pct``,
    ``a_calls``/``b_calls``; ``name`` and ``scope`` are b's (a's for an
    operator b lacks), ``a_name`` a's; largest change first.  An operator
    in only one profile has the other side 0."""
    keys = ["path", "type", "nth"]
    cols = keys + ["name", "scope", "per_step_ns", "calls", "mean_ns"]
    m = match_keys(oa)[cols].merge(match_keys(ob)[cols], on=keys, how="outer",
                                   suffixes=("_a", "_b"))
    out = pd.DataFrame({"name": m["name_b"].fillna(m["name_a"]), "type": m["type"],
                        "scope": m["scope_b"].fillna(m["scope_a"]), "path": m["path"],
                        "a_name": m["name_a"],
                        "a_ns": m["per_step_ns_a"].fillna(0) / per_a,
                        "b_ns": m["per_step_ns_b"].fillna(0) / per_b,
                        "a_calls": m["calls_a"].fillna(0).astype("int64"),
                        "b_calls": m["calls_b"].fillna(0).astype("int64"),
                        "a_mean_ns": m["mean_ns_a"], "b_mean_ns": m["mean_ns_b"]})
    out["delta_ns"] = out["b_ns"] - out["a_ns"]
    out["pct"] = (out["delta_ns"] / out["a_ns"]).where(out["a_ns"] > 0)
    out["change"] = np.where(m["name_a"].isna(), "new", np.where(m["name_b"].isna(), "removed", ""))
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


def memory_deltas(ma: pd.DataFrame, mb: pd.DataFrame) -> pd.DataFrame:
    """Per rank, the pool's ``peak`` and ``final`` bytes in use (of
    :meth:`Profile.memory_peaks`) in ``a`` and ``b`` and their deltas:
    what a leak fixed gives back shows in ``final``."""
    cols = ["rank", "peak", "final"]
    m = ma[cols].merge(mb[cols], on="rank", how="outer", suffixes=("_a", "_b"))
    for c in ("peak", "final"):
        m[f"{c}_delta"] = m[f"{c}_b"].astype("float64") - m[f"{c}_a"].astype("float64")
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


def verdict(step: dict, ta: dict, tb: dict, unit: str, why: str, ops: pd.DataFrame,
            ranks) -> list[dict]:
    """The regression or improvement finding, when the time per ``unit``
    moved by more than :data:`REGRESSION_FRAC` (an empty list otherwise).
    Its ``impact_ns`` is what the regression costs per step of ``b``."""
    if unit == "sample":
        a, b = ta["ns_per_sample"], tb["ns_per_sample"]
        per_step_b = tb["samples_per_step"]
    else:
        a, b, per_step_b = step["a_ns"], step["b_ns"], 1.0
    if not a or b is None:
        return []
    pct = (b - a) / a
    if abs(pct) <= REGRESSION_FRAC:
        return []
    worse = pct > 0
    drivers = ops[ops["delta_ns"] > 0] if worse else ops[ops["delta_ns"] < 0]
    names = list(drivers["name"].head(3))
    if unit == "sample":
        what = (f"throughput {ta['samples_per_s']:,.0f} -> {tb['samples_per_s']:,.0f} samples/s "
                f"({a / b - 1:+.0%}); "
                f"time per sample {fmt_ns(a)} -> {fmt_ns(b)} ({pct:+.0%})")
    else:
        what = f"step time {fmt_ns(a)} -> {fmt_ns(b)} ({pct:+.0%})"
    if why:
        what += f" ({why})"
    return [dict(_finding(
        "regression" if worse else "improvement", "warning" if worse else "info",
        ranks, names, (b - a) * per_step_b if worse else 0,
        what + (f"; most of it in {', '.join(names)}" if names else ""),
        "compare the operators and devices below" if worse else "",
        delta_ns=(b - a) * per_step_b, basis=unit), change="appeared")]


def diff(a, b, top: int | None = 20) -> dict:
    """The comparison of profiles ``a`` and ``b``: ``step`` (the typical
    step), ``throughput`` (each side's :func:`throughput`, the ``basis``
    compared, ``sample`` or ``step``, and ``why``), ``ops`` (the ``top``
    largest changes, per step or per sample as ``basis`` says),
    ``devices``, ``memory`` (:func:`memory_deltas`), ``findings`` (b's,
    ranked, a ``regression``/``improvement`` first when the time per
    sample, or per step, moved by more than :data:`REGRESSION_FRAC`) and
    ``vanished``.  With a summary-mode profile on either side, ``devices``
    and ``memory`` are absent, ``findings`` holds only the regression or
    improvement, and ``not_recorded`` lists :data:`NEEDS_TRACE`."""
    summary = a.summary_mode or b.summary_mode
    ta, tb = throughput(a.steps), throughput(b.steps)
    unit, why = basis(ta, tb)
    step = step_delta(ta["step_ns"], tb["step_ns"])
    per_a, per_b = ((ta["samples_per_step"], tb["samples_per_step"]) if unit == "sample"
                    else (1.0, 1.0))
    ops = op_deltas(a.op_stats(), b.op_stats(), per_a, per_b)
    if summary:
        now, gone = [], []
    else:
        now, gone = finding_changes(a.findings(), b.findings())
    ranks = sorted(b.steps["rank"].unique().tolist()) if len(b.steps) else b.ranks
    extra = verdict(step, ta, tb, unit, why, ops, ranks)
    doc = {
        "a": {"sources": a.meta.get("sources", []), "ranks": a.ranks,
              "mode": a.meta.get("mode", "trace")},
        "b": {"sources": b.meta.get("sources", []), "ranks": b.ranks,
              "mode": b.meta.get("mode", "trace")},
        "step": step,
        "throughput": {"a": ta, "b": tb, "basis": unit, "why": why},
        "ops": ops.head(top) if top else ops,
        "findings": extra + rank_order(now),       # the verdict first
        "vanished": gone,
    }
    if summary:
        # A summary's kernels have no times: no breakdown to compare, no
        # bottleneck found (the regression above stands: steps are
        # recorded in both modes).
        doc["not_recorded"] = NEEDS_TRACE
    else:
        doc["devices"] = device_deltas(typical_steps(a.step_breakdown()),
                                       typical_steps(b.step_breakdown()))
        doc["memory"] = memory_deltas(a.memory_peaks(), b.memory_peaks())
    return doc
