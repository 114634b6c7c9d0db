"""Time outside steps: from one step's end to the next step's begin, per rank.

A training loop does more than its steps: it fetches and preprocesses the
next batch, logs, evaluates.  None of that lies inside a step window, so
the step breakdown cannot see it, yet every iteration pays for it (and in
a synchronous multi-rank job, every other rank waits for the slowest
rank's loop at the next collective).

Per rank and step (but the last), the window ``[end of step i, begin of
step i + 1)`` and where the host spent it, as far as the profile can
tell.  The host thread is the rank's main thread (the one that opens and
closes steps: its thread id is the process id); the scheduler tables say
when it slept and when it waited for a CPU (eBPF only; the in-process
backend records neither, so there all of it is ``on_cpu_ns``):

``between_steps_ns``  the window's length
``device_ns``         the rank's kernels ran (runtime work outside a step:
                      evaluation, a warm-up run)
``asleep_ns``         the host thread slept (``blocked``): a ``sleep``, I/O,
                      a lock, a loader it waits on
``cpu_wait_ns``       the host thread was runnable but another held the CPU
``on_cpu_ns``         the rest: the host thread ran (Python, numpy
                      preprocessing, the runtime's own calls, compiling)

``device_ns`` may overlap the host parts (the host can sleep while a kernel
runs); the three host parts sum to ``between_steps_ns``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["rank", "step", "end_ns", "between_steps_ns", "device_ns", "asleep_ns",
           "cpu_wait_ns", "on_cpu_ns"]


def windows(steps: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """Per rank and step but its last: ``rank``, ``pid``, ``step``,
    ``end_ns`` (the step's end) and ``between_steps_ns`` (until the rank's
    next step begins; steps in start order)."""
    s = steps if rank is None else steps[steps["rank"] == rank]
    s = s.sort_values(["rank", "start_ns"], kind="stable")
    end = s["start_ns"].to_numpy(dtype="int64") + s["dur_ns"].to_numpy(dtype="int64")
    nxt = s.groupby("rank")["start_ns"].shift(-1)
    out = pd.DataFrame({"rank": s["rank"].to_numpy(), "pid": s["pid"].to_numpy(),
                        "step": s["step"].to_numpy(), "end_ns": end,
                        "between_steps_ns": (nxt.to_numpy(dtype="float64") - end)})
    out = out[nxt.notna().to_numpy()]
    out["between_steps_ns"] = out["between_steps_ns"].clip(lower=0).astype("int64")
    return out.reset_index(drop=True)


def _merged(start: np.ndarray, end: np.ndarray):
    """Disjoint sorted segments covering the union of ``[start, end)``."""
    if not len(start):
        return start, end
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    return s[idx], np.maximum.reduceat(e, idx)


def _covered(seg_s: np.ndarray, seg_e: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each window ``[a, b)``, the time disjoint sorted segments cover
    in it: F(b) - F(a), F(t) the segments' measure before t."""
    if not len(seg_s) or not len(a):
        return np.zeros(len(a), dtype="int64")
    cum = np.concatenate([[0], np.cumsum(seg_e - seg_s)])

    def measure(t):
        i = np.searchsorted(seg_s, t, side="right")       # segments starting at or before t
        last = np.maximum(i - 1, 0)
        part = np.where(i > 0, np.clip(t - seg_s[last], 0, seg_e[last] - seg_s[last]), 0)
        return cum[last] * (i > 0) + part
    return (measure(b) - measure(a)).astype("int64")


def between_steps(steps: pd.DataFrame, kernels: pd.DataFrame, blocked: pd.DataFrame,
                  cpu_waits: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """Per rank and step but its last, the time until the next step and
    where it went (module docstring; columns :data:`COLUMNS`)."""
    w = windows(steps, rank)
    if w.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in COLUMNS})
    parts = {c: np.zeros(len(w), dtype="int64") for c in ("device_ns", "asleep_ns",
                                                           "cpu_wait_ns")}
    a = w["end_ns"].to_numpy(dtype="int64")
    b = a + w["between_steps_ns"].to_numpy(dtype="int64")
    busy = cpu_waits[~cpu_waits["idle_cpu"].to_numpy(dtype=bool)] if len(cpu_waits) else cpu_waits
    # a step's kernels lie inside it (it ends after its streams are
    # synchronised): only kernels outside every step can run between steps
    kernels = kernels[kernels["step"].to_numpy() < 0]
    for r in w["rank"].unique():       # a loop per rank, not per event
        here = (w["rank"] == r).to_numpy()
        pids = set(w.loc[here, "pid"].tolist())
        k = kernels[kernels["rank"] == r]
        ks = k["start_ns"].to_numpy(dtype="int64")
        parts["device_ns"][here] = _covered(*_merged(ks, ks + k["dur_ns"].to_numpy(dtype="int64")),
                                            a[here], b[here])
        for col, table in (("asleep_ns", blocked), ("cpu_wait_ns", busy)):
            if table is None or table.empty:
                continue
            t = table[(table["rank"] == r) & table["tid"].isin(pids)]   # the main thread
            ts = t["start_ns"].to_numpy(dtype="int64")
            parts[col][here] = _covered(*_merged(ts, ts + t["dur_ns"].to_numpy(dtype="int64")),
                                        a[here], b[here])
    out = w.drop(columns="pid").assign(**parts)
    host = out["asleep_ns"] + out["cpu_wait_ns"]
    out["on_cpu_ns"] = (out["between_steps_ns"] - host).clip(lower=0)
    return out[COLUMNS]


def per_rank(between: pd.DataFrame, step_df: pd.DataFrame) -> pd.DataFrame:
    """Per rank, the typical (median) iteration: ``steps`` (windows seen),
    ``step_ns`` (median step), ``between_steps_ns``, ``asleep_ns``,
    ``cpu_wait_ns``, ``on_cpu_ns``, ``device_ns`` (medians over the
    windows), ``iteration_ns`` (step + between) and ``share`` (of the
    iteration spent between steps)."""
    cols = ["rank", "steps", "step_ns", "between_steps_ns", "asleep_ns", "cpu_wait_ns",
            "on_cpu_ns", "device_ns", "iteration_ns", "share"]
    if between.empty or step_df.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    g = between.groupby("rank")
    out = g[["between_steps_ns", "asleep_ns", "cpu_wait_ns", "on_cpu_ns", "device_ns"]].median()
    out.insert(0, "steps", g.size())
    out.insert(1, "step_ns", step_df.groupby("rank")["step_ns"].median().reindex(out.index))
    out["iteration_ns"] = out["step_ns"] + out["between_steps_ns"]
    out["share"] = (out["between_steps_ns"] / out["iteration_ns"]).where(
        out["iteration_ns"] > 0, 0.0)
    return out.reset_index()[cols]
