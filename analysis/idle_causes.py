"""Why a device sat idle inside a step, as far as the profile saw it.

The step breakdown's gaps (:func:`msprof.analysis.breakdown.gaps`) are
stretches in which no kernel of the rank ran on any stream, communication
included; so a gap is never a collective or another stream running.  Each
gap is one of:

``tail_ns``        after the step's last kernel: the host finishing the step
                   (synchronising, copying outputs out, freeing)
``host_ns``        nothing queued: the host had not launched the next kernel
                   yet (empty queue)
``queued_ns``      the next kernel was launched but had not started; nothing
                   ran, so it waited on the executor that runs kernels.  Of it,
                   from the scheduler tables (eBPF): ``queued_cpu_wait_ns``
                   (the executor's thread runnable, another held the CPU; of
                   it ``queued_own_wait_ns`` behind the rank's own threads,
                   such as the host thread launching) and
                   ``queued_asleep_ns`` (it slept: the GIL, a lock the host
                   held); the rest, ``dispatch_ns``, is the executor's own
                   cost of picking up and starting the next kernel

and, per kernel: ``kernels`` (per step), ``per_op_ns`` (host and queued
gaps before kernels, per kernel: what issuing and dispatching one operator
costs beyond its kernel) and ``kernel_p50_ns`` (the median kernel).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis.between_steps import _covered, _merged

COLUMNS = ["rank", "steps", "kernels", "kernel_p50_ns", "tail_ns", "host_ns", "queued_ns",
           "queued_cpu_wait_ns", "queued_own_wait_ns", "queued_asleep_ns", "dispatch_ns",
           "per_op_ns"]


def _thread_time(gaps: pd.DataFrame, table: pd.DataFrame | None, tids: dict) -> np.ndarray:
    """Per gap, the time any of its rank's kernel threads spent in
    ``table``'s intervals during it."""
    out = np.zeros(len(gaps), dtype="int64")
    if table is None or table.empty or gaps.empty:
        return out
    for r, ts in tids.items():                      # a loop per rank
        here = (gaps["rank"] == r).to_numpy()
        t = table[(table["rank"] == r) & table["tid"].isin(ts)]
        if t.empty or not here.any():
            continue
        s = t["start_ns"].to_numpy(dtype="int64")
        seg = _merged(s, s + t["dur_ns"].to_numpy(dtype="int64"))
        out[here] = _covered(*seg, gaps.loc[here, "start_ns"].to_numpy(dtype="int64"),
                             gaps.loc[here, "end_ns"].to_numpy(dtype="int64"))
    return out


def idle_causes(gaps: pd.DataFrame, kernels: pd.DataFrame, step_df: pd.DataFrame,
                blocked: pd.DataFrame | None = None,
                cpu_waits: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per rank, the typical step (medians over its steps) of the parts
    described in the module docstring (columns :data:`COLUMNS`)."""
    if gaps.empty or step_df.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in COLUMNS})
    tids = {r: set(g["tid"].unique()) for r, g in kernels.groupby("rank")}
    busy = (cpu_waits[~cpu_waits["idle_cpu"].to_numpy(dtype=bool)]
            if cpu_waits is not None and len(cpu_waits) else cpu_waits)
    own = (busy[busy["holder_pid"].to_numpy() == busy["pid"].to_numpy()]
           if busy is not None and len(busy) else busy)
    g = gaps.assign(
        tail_ns=np.where(gaps["tail"], gaps["dur_ns"], 0),
        q_wait=_thread_time(gaps, busy, tids), q_sleep=_thread_time(gaps, blocked, tids),
        q_own=_thread_time(gaps, own, tids))
    queued = g["queued_ns"].to_numpy(dtype="int64")
    g["queued_cpu_wait_ns"] = np.minimum(g["q_wait"], queued)
    g["queued_own_wait_ns"] = np.minimum(g["q_own"], g["queued_cpu_wait_ns"])
    g["queued_asleep_ns"] = np.minimum(g["q_sleep"], queued - g["queued_cpu_wait_ns"])
    per = g.groupby(["rank", "step"])[["tail_ns", "host_ns", "queued_ns", "queued_cpu_wait_ns",
                                       "queued_own_wait_ns", "queued_asleep_ns"]].sum()
    sd = step_df.set_index(["rank", "step"])
    per = per.reindex(sd.index).fillna(0)
    per["kernels"] = sd["kernels"]
    per["dispatch_ns"] = per["queued_ns"] - per["queued_cpu_wait_ns"] - per["queued_asleep_ns"]
    per["per_op_ns"] = ((per["host_ns"] + per["queued_ns"]) / per["kernels"]).where(
        per["kernels"] > 0, 0.0)
    out = per.groupby(level="rank").median()
    out.insert(0, "steps", per.groupby(level="rank").size())
    k = kernels[kernels["step"] >= 0]
    out["kernel_p50_ns"] = k.groupby("rank")["dur_ns"].median().reindex(out.index)
    return out.reset_index()[COLUMNS]


OWN_THREADS_SHARE = 0.8   # the rank's waits for a CPU ended by its own threads, at least


def mostly_own(causes: pd.DataFrame, holders: pd.DataFrame) -> pd.DataFrame:
    """``causes`` with ``queued_own_wait_ns`` kept only for ranks whose
    compute threads' waits for a CPU were ended by the rank's own threads
    in ``OWN_THREADS_SHARE`` of the time or more (``holders`` from
    :func:`msprof.analysis.contention.holders`), else 0.  A wait's holder
    is the last thread that ran before it, so behind a busy process the
    rank's own threads often end the wait too: a run beside a process
    spinning on the same core had 97 % of its executor's waits ended by
    its own threads, though its holders were its own threads for 48 % of
    the wait time; a long chain of small operators, whose host thread
    launching shared one core with the executor, 88 %."""
    if causes.empty:
        return causes
    own = (holders[holders["holder"] == "own threads"].set_index("rank")["share"]
           if holders is not None and len(holders) else pd.Series(dtype="float64"))
    keep = causes["rank"].map(own).fillna(0.0) >= OWN_THREADS_SHARE
    return causes.assign(queued_own_wait_ns=causes["queued_own_wait_ns"].where(keep, 0.0))
