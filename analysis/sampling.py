"""Bounding what a picture of the profile draws, whatever the profile's size.

A browser draws a few thousand rectangles smoothly, not millions, so the
HTML report asks this module for:

* :func:`step_sample` -- at most ``max_steps`` steps per rank for the step
  breakdown chart: consecutive steps are binned and each bin is shown by
  its slowest step, so a slow step is never averaged away;
* :func:`default_window` -- the steps a timeline shows when none are asked
  for: the slowest step (of any rank) and its neighbours;
* :func:`slices` -- the rectangles of a per-rank timeline of a window of
  steps (kernels per stream, collectives, waits for a CPU, sleeps), at most
  ``max_slices``: beyond that the longest are kept (the short ones would be
  thinner than a pixel at the window's zoom) and ``attrs`` says how many
  were left out and how much time they covered.

Pure functions of DataFrames (the profile's tables), no drawing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis.flame import COMM, COMPUTE, MEMORY, op_class
from msprof.errors import MsprofError

WAIT = "waiting for a CPU"   # a runtime thread runnable, but another held the core
ASLEEP = "asleep"            # a runtime thread sleeping: the GIL, a lock, I/O

MAX_STEP_BARS = 300          # per rank: 300 bars of >= 2 px each in a 1000 px-wide chart
WINDOW_STEPS = 3             # the slowest step and one on each side
# Plotly draws bars as SVG: 5000 bars render in ~1 s in headless Chromium on
# this 2-core VM (measured with the 10 M-event profile), which keeps the page
# responsive; the longest 5000 of a window hold nearly all of its time.
MAX_SLICES = 5000

SLICE_COLUMNS = ["rank", "lane", "kind", "start_ns", "dur_ns", "name", "scope", "step"]


def step_sample(steps: pd.DataFrame, max_steps: int = MAX_STEP_BARS) -> pd.DataFrame:
    """At most ``max_steps`` rows per rank of a step breakdown (one row per
    rank and step): consecutive steps in equal bins, each shown by its
    slowest step.  ``attrs["per_bar"]`` is the number of steps a bar stands
    for (1 when nothing was left out)."""
    if steps.empty:
        out = steps.copy()
        out.attrs["per_bar"] = 1
        return out
    per_rank = int(steps.groupby("rank").size().max())
    per_bar = max(1, -(-per_rank // max_steps))
    if per_bar == 1:
        out = steps.sort_values(["rank", "step"]).reset_index(drop=True)
        out.attrs["per_bar"] = 1
        return out
    s = steps.sort_values(["rank", "step"]).reset_index(drop=True)
    order = s.groupby("rank").cumcount().to_numpy() // per_bar
    slowest = s.assign(_bin=order).groupby(["rank", "_bin"])["step_ns"].idxmax()
    out = s.loc[slowest.to_numpy()].reset_index(drop=True)
    out.attrs["per_bar"] = per_bar
    return out


def default_window(steps: pd.DataFrame, n: int = WINDOW_STEPS) -> tuple[int, int]:
    """``(first, last)`` step numbers: ``n`` steps around the slowest step
    of any rank (fewer at the ends of the run)."""
    if steps.empty:
        raise MsprofError("no steps recorded, so no window of steps to draw")
    slow = int(steps.loc[steps["step_ns" if "step_ns" in steps else "dur_ns"].idxmax(), "step"])
    numbers = np.sort(steps["step"].unique())
    i = int(np.searchsorted(numbers, slow))
    lo = max(0, min(i - n // 2, len(numbers) - n))
    hi = min(len(numbers), lo + n) - 1
    return int(numbers[lo]), int(numbers[hi])


def window_bounds(steps: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """Per rank, ``t0``/``t1``: from the start of step ``first`` to the end of
    step ``last`` (the steps table: rank, step, start_ns, dur_ns)."""
    st = steps[(steps["step"] >= first) & (steps["step"] <= last)]
    if st.empty:
        have = np.sort(steps["step"].unique())
        span = f"{have[0]}-{have[-1]}" if len(have) else "none"
        raise MsprofError(f"no steps {first}-{last} in this profile (steps: {span})")
    return st.assign(end=st["start_ns"] + st["dur_ns"]).groupby("rank").agg(
        t0=("start_ns", "min"), t1=("end", "max")).reset_index()


def _in_window(df: pd.DataFrame, bounds: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` (rank, start_ns, dur_ns) that overlap their rank's window."""
    if df.empty:
        return df
    b = df[["rank"]].merge(bounds, on="rank", how="left")
    end = df["start_ns"].to_numpy() + df["dur_ns"].to_numpy()
    keep = (df["start_ns"].to_numpy() < b["t1"].to_numpy()) & (end > b["t0"].to_numpy())
    return df[np.nan_to_num(keep, nan=False).astype(bool)]


def slices(kernels: pd.DataFrame, ops: pd.DataFrame, comms: pd.DataFrame, steps: pd.DataFrame,
           first: int, last: int, cpu_waits: pd.DataFrame | None = None,
           blocked: pd.DataFrame | None = None, rank: int | None = None,
           max_slices: int = MAX_SLICES) -> pd.DataFrame:
    """The rectangles of the timeline of steps ``first``..``last``, one row
    each (:data:`SLICE_COLUMNS`): ``lane`` is ``stream N`` for kernels,
    ``collectives``, ``CPU waits`` or ``asleep``; ``kind`` compute /
    communication / memory (by op class), :data:`WAIT` or :data:`ASLEEP`.  At most
    ``max_slices`` rows, the longest; ``attrs``: ``window`` (first, last),
    ``dropped`` (rows left out) and ``dropped_ns`` (their time)."""
    def sel(df):
        return df if rank is None or df is None else df[df["rank"] == rank]

    bounds = window_bounds(sel(steps), first, last)
    parts = []
    k = _in_window(sel(kernels), bounds)
    if len(k):
        info = ops.drop_duplicates(["rank", "op_id"], keep="last")[
            ["rank", "op_id", "name", "type", "scope"]]
        k = k.merge(info, on=["rank", "op_id"], how="left")
        name = k["name"].fillna("op " + k["op_id"].astype(str))
        kind = [op_class(str(t or ""), int(s)) for t, s in zip(k["type"].fillna(""), k["stream"])]
        parts.append(pd.DataFrame({
            "rank": k["rank"], "lane": "stream " + k["stream"].astype(str), "kind": kind,
            "start_ns": k["start_ns"], "dur_ns": k["dur_ns"], "name": name,
            "scope": k["scope"].fillna(""), "step": k["step"]}))
    c = _in_window(sel(comms), bounds)
    if len(c):
        parts.append(pd.DataFrame({
            "rank": c["rank"], "lane": "collectives", "kind": COMM, "start_ns": c["start_ns"],
            "dur_ns": c["dur_ns"], "name": c["kind"].astype(str) + " " + c["bytes"].map(
                lambda b: f"{int(b):,} B"), "scope": "group " + c["group"].astype(str),
            "step": c["step"]}))
    for df, lane, kind, what in ((cpu_waits, "CPU waits", WAIT, "waiting for a CPU"),
                                 (blocked, "asleep", ASLEEP, "asleep (GIL, lock, I/O)")):
        w = _in_window(sel(df), bounds) if df is not None and len(df) else None
        if w is not None and len(w):
            parts.append(pd.DataFrame({
                "rank": w["rank"], "lane": lane, "kind": kind, "start_ns": w["start_ns"],
                "dur_ns": w["dur_ns"], "name": what, "scope": "thread " + w["tid"].astype(str),
                "step": -1}))
    if not parts:
        out = pd.DataFrame({c: pd.Series(dtype="object") for c in SLICE_COLUMNS})
        dropped, dropped_ns = 0, 0
    else:
        out = pd.concat(parts, ignore_index=True)[SLICE_COLUMNS]
        dropped, dropped_ns = max(0, len(out) - max_slices), 0
        if dropped:
            order = np.argsort(-out["dur_ns"].to_numpy(), kind="stable")
            dropped_ns = int(out["dur_ns"].to_numpy()[order[max_slices:]].sum())
            out = out.iloc[np.sort(order[:max_slices])].reset_index(drop=True)
    out.attrs.update(window=(first, last), dropped=int(dropped), dropped_ns=dropped_ns)
    return out


KINDS = (COMPUTE, COMM, MEMORY, WAIT, ASLEEP)
