"""Per-device step breakdown: where each rank's step time went.

Every step window ``[start_ns, start_ns + dur_ns)`` of a rank splits exactly
into three parts, ``busy_ns + host_gap_ns + idle_ns == step_ns``:

``busy_ns``
    Time at least one kernel of the rank ran, on any stream: the union of
    its kernels' ``[start_ns, start_ns + dur_ns)`` cut to the window.
``host_gap_ns``  (launch- or host-bound)
    Time no kernel ran *and none was queued*: the device had finished
    everything launched so far and the next kernel of the step had not been
    launched yet, so the device waited on the host (Python, the framework,
    the launch path).  Formally, for a gap ``[g0, g1)`` ended by a kernel at
    ``g1``, with ``L`` the earliest ``launch_ns`` among the step's kernels
    that start at or after ``g1``: ``host = clip(L, g0, g1) - g0``.
``idle_ns``
    The rest: gaps in which the next kernel was already launched but had not
    started (``queued_ns``: waiting on a dependency, another stream, a
    collective, a busy executor), and the tail after the step's last kernel
    (synchronisation, host work with no kernel to follow).

A kernel with an unknown launch time (``launch_ns`` <= 0) counts as launched
long ago, so gaps it ends are idle, never host-bound.  Kernels are assigned
to step windows by time (not by their ``step`` column), so a kernel launched
in one step and run in the next counts where it ran; see
:func:`msprof.analysis.intervals.clip_to_windows` for boundary cases.

``busy_ns`` further splits by what ran, so that
``compute_ns + exposed_comm_ns + bubble_ns + host_gap_ns + idle_ns ==
step_ns`` exactly:

``compute_ns``
    Time at least one compute kernel ran (any stream but the
    communication stream, :data:`COMM_STREAM`).
``bubble_ns``  (pipeline bubble)
    Time with no compute in which a send or receive waited for its peer
    stage (:func:`msprof.analysis.comm.waits`).
``exposed_comm_ns``
    The rest of the time communication ran with no compute: transfers,
    and collectives waiting for the slowest rank (``comm_wait_ns``, a part
    of it: the cost of load imbalance).

Informational: ``comm_ns`` (time any communication ran) and
``overlapped_comm_ns`` (the part of it hidden under compute;
``comm_ns == overlapped_comm_ns + exposed_comm_ns + bubble_ns``).
Communication is the kernels on the communication stream (and, for a
rank without any, its ``comms`` rows: see :func:`work`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import comm as _comm
from msprof.analysis.intervals import clip_to_windows, union, windows

_NEVER = np.iinfo("int64").min  # launch time of a kernel launched "long ago"
COMM_STREAM = _comm.COMM_STREAM


def _select(df: pd.DataFrame, rank: int | None) -> pd.DataFrame:
    return df if rank is None else df[df["rank"] == rank]


def work(kernels: pd.DataFrame, comms: pd.DataFrame | None) -> pd.DataFrame:
    """What kept each rank's device busy: its kernels (``real`` 1), with
    ``comm`` telling communication from compute.  A rank with ``comms`` rows
    but no communication kernel (collectives seen by MPI uprobes only) gets
    those rows as communication (``real`` 0, launch time unknown, ``op_id``
    -1); otherwise they lie inside its communication kernels already."""
    k = kernels[["rank", "op_id", "launch_ns", "start_ns", "dur_ns"]].assign(
        comm=(kernels["stream"] == COMM_STREAM).to_numpy() if "stream" in kernels else False,
        real=1)
    if comms is None or comms.empty:
        return k
    comms = comms[~comms["rank"].isin(k.loc[k["comm"], "rank"].unique())]
    if comms.empty:
        return k
    c = pd.DataFrame({"rank": comms["rank"], "op_id": -1, "launch_ns": 0,
                      "start_ns": comms["start_ns"], "dur_ns": comms["dur_ns"],
                      "comm": True, "real": 0})
    return pd.concat([k, c], ignore_index=True)


def _intervals(df: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    iv = df[["rank"] + extra + ["start_ns"]].copy()
    iv["end_ns"] = df["start_ns"] + df["dur_ns"]
    return iv


_GAP_DTYPES = {"rank": "int32", "step": "int64", "start_ns": "int64", "end_ns": "int64",
               "dur_ns": "int64", "host_ns": "int64", "queued_ns": "int64",
               "next_op_id": "int64", "tail": bool}
_EMPTY_GAPS = pd.DataFrame({c: pd.Series(dtype=t) for c, t in _GAP_DTYPES.items()})
_EMPTY_SEGS = pd.DataFrame({c: pd.Series(dtype="int64") for c in (
    "rank", "step", "win_start", "win_end", "s", "e", "pending", "op_id", "kernels")})


def _segments(kernels: pd.DataFrame, win: pd.DataFrame):
    """Busy segments and gaps of every step window."""
    iv = _intervals(kernels, ["op_id", "launch_ns", "real"])
    iv["launch_ns"] = iv["launch_ns"].where(iv["launch_ns"] > 0, _NEVER)
    pieces = clip_to_windows(iv, win)
    if pieces.empty:
        return _EMPTY_SEGS.copy(), _EMPTY_GAPS.copy()
    p, seg = union(pieces, ["rank", "win_step"])
    gk = p.groupby(["rank", "win_step"], sort=False).ngroup()
    rev = p["launch_ns"].iloc[::-1]
    p["pending"] = rev.groupby(gk.iloc[::-1]).cummin().iloc[::-1]
    segs = p.groupby(seg).agg(
        rank=("rank", "first"), step=("win_step", "first"),
        win_start=("win_start", "first"), win_end=("win_end", "first"),
        s=("s", "first"), e=("e", "max"), pending=("pending", "first"),
        op_id=("op_id", "first"), kernels=("real", "sum"),
    )
    prev = segs.groupby(["rank", "step"], sort=False)["e"].shift()
    g0 = prev.fillna(segs["win_start"]).astype("int64")
    g1 = segs["s"]
    host = np.clip(segs["pending"], g0, g1) - g0
    gaps = pd.DataFrame({
        "rank": segs["rank"], "step": segs["step"], "start_ns": g0, "end_ns": g1,
        "host_ns": host, "queued_ns": (g1 - g0) - host, "next_op_id": segs["op_id"],
        "tail": False,
    })
    last = segs.groupby(["rank", "step"], sort=False).tail(1)
    tails = pd.DataFrame({
        "rank": last["rank"], "step": last["step"], "start_ns": last["e"],
        "end_ns": last["win_end"], "host_ns": 0, "queued_ns": 0, "next_op_id": -1,
        "tail": True,
    })
    gaps = pd.concat([gaps, tails], ignore_index=True)
    gaps["dur_ns"] = gaps["end_ns"] - gaps["start_ns"]
    gaps = gaps[gaps["dur_ns"] > 0]
    gaps = gaps[list(_GAP_DTYPES)].astype(_GAP_DTYPES)
    return segs, gaps.sort_values(["rank", "step", "start_ns"]).reset_index(drop=True)


def gaps(kernels: pd.DataFrame, steps: pd.DataFrame, rank: int | None = None,
         comms: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every stretch of a step in which no kernel of the rank ran.

    Columns: ``rank``, ``step``, ``start_ns``, ``end_ns``, ``dur_ns``,
    ``host_ns`` (the host-bound part, see the module docstring),
    ``queued_ns`` (the part in which the next kernel was already launched),
    ``next_op_id`` (the operator of the kernel that ended the gap, -1 for
    the tail) and ``tail`` (after the step's last kernel).  A step with no
    kernel is one tail gap.  ``comms`` rows count as device work (see
    :func:`work`).
    """
    steps = _select(steps, rank)
    win = windows(steps)
    c = _select(comms, rank) if comms is not None else None
    segs, g = _segments(work(_select(kernels, rank), c), win)
    return _with_empty_steps(segs, g, win)


def _with_empty_steps(segs: pd.DataFrame, g: pd.DataFrame, win: pd.DataFrame) -> pd.DataFrame:
    busy_steps = segs[["rank", "step"]].drop_duplicates()
    empty = win.merge(busy_steps, left_on=["rank", "win_step"], right_on=["rank", "step"],
                      how="left", indicator=True)
    empty = empty[empty["_merge"] == "left_only"]
    whole = pd.DataFrame({
        "rank": empty["rank"], "step": empty["win_step"], "start_ns": empty["win_start"],
        "end_ns": empty["win_end"], "dur_ns": empty["win_ns"], "host_ns": 0,
        "queued_ns": 0, "next_op_id": -1, "tail": True,
    })
    whole = whole[whole["dur_ns"] > 0]
    out = pd.concat([g, whole.astype(_GAP_DTYPES)], ignore_index=True)
    return out.sort_values(["rank", "step", "start_ns"], kind="stable").reset_index(drop=True)


def _union_ns(df: pd.DataFrame, win: pd.DataFrame) -> pd.Series:
    """Per (rank, step): time covered by at least one interval of ``df``."""
    if df.empty:
        return pd.Series(dtype="int64")
    pieces = clip_to_windows(_intervals(df, []), win)
    if pieces.empty:
        return pd.Series(dtype="int64")
    p, seg = union(pieces, ["rank", "win_step"])
    segs = p.groupby(seg).agg(rank=("rank", "first"), step=("win_step", "first"),
                              s=("s", "first"), e=("e", "max"))
    return (segs["e"] - segs["s"]).groupby([segs["rank"], segs["step"]]).sum()


def _memory_peaks(memory: pd.DataFrame, win: pd.DataFrame) -> pd.Series:
    """Per (rank, step): the highest ``in_use`` during the step, counting the
    level carried in from before it."""
    if memory.empty or win.empty:
        return pd.Series(dtype="int64")
    mem = memory[["rank", "ts_ns", "in_use"]].sort_values("ts_ns", kind="stable")
    inside = pd.merge_asof(mem, win, left_on="ts_ns", right_on="win_start", by="rank",
                           direction="backward")
    inside = inside[inside["win_start"].notna() & (inside["ts_ns"] < inside["win_end"])]
    during = inside.groupby(["rank", "win_step"])["in_use"].max()
    carried = pd.merge_asof(win, mem, left_on="win_start", right_on="ts_ns", by="rank",
                            direction="backward").dropna(subset=["in_use"])
    carried = carried.set_index(["rank", "win_step"])["in_use"]
    peak = pd.concat([during, carried]).groupby(level=[0, 1]).max()
    peak.index.names = ["rank", "step"]
    return peak.astype("int64")


def breakdown_and_gaps(kernels: pd.DataFrame, steps: pd.DataFrame, memory: pd.DataFrame,
                       comms: pd.DataFrame | None = None, rank: int | None = None):
    """``(step_breakdown(...), gaps(...))`` computed together (they share
    the costly part)."""
    return _step_breakdown(kernels, steps, memory, comms, rank, with_gaps=True)


def _iv(rank, start, end) -> pd.DataFrame:
    return pd.DataFrame({"rank": rank, "start_ns": start, "dur_ns": end - start})


def step_breakdown(kernels: pd.DataFrame, steps: pd.DataFrame, memory: pd.DataFrame,
                   comms: pd.DataFrame | None = None, rank: int | None = None) -> pd.DataFrame:
    """One row per (rank, step) with ``start_ns``, ``step_ns``, ``busy_ns``,
    ``host_gap_ns``, ``idle_ns`` (these three sum to ``step_ns`` exactly),
    ``queued_ns`` (the part of idle_ns in which a launched kernel waited),
    ``kernels`` (kernels that ran in the step), ``comm_ns``, ``mem_peak``
    (highest bytes in use in the pool during the step; <NA> without memory
    events), and the split of busy time described in the module docstring:
    ``compute_ns``, ``exposed_comm_ns``, ``bubble_ns`` (with host_gap_ns and
    idle_ns they sum to step_ns), ``overlapped_comm_ns``, ``comm_wait_ns``.

    ``comms`` holds every rank's collectives (waits are found by matching
    ranks, so pass them all even when ``rank`` selects one)."""
    return _step_breakdown(kernels, steps, memory, comms, rank)


def _step_breakdown(kernels, steps, memory, comms, rank, with_gaps=False):
    steps = _select(steps, rank)
    win = windows(steps)
    out = win.rename(columns={"win_step": "step", "win_start": "start_ns", "win_ns": "step_ns"})
    out = out[["rank", "step", "start_ns", "step_ns"]].set_index(["rank", "step"])
    c = _select(comms, rank) if comms is not None else None
    w = work(_select(kernels, rank), c)
    segs, g = _segments(w, win)
    sums = g.groupby(["rank", "step"])[["host_ns", "queued_ns"]].sum()
    busy = (segs["e"] - segs["s"]).groupby([segs["rank"], segs["step"]]).sum()
    nk = segs.groupby(["rank", "step"])["kernels"].sum()

    def col(series):
        return series.reindex(out.index).fillna(0).astype("int64")

    out["busy_ns"] = col(busy)
    out["host_gap_ns"] = col(sums["host_ns"])
    out["idle_ns"] = out["step_ns"] - out["busy_ns"] - out["host_gap_ns"]
    out["queued_ns"] = col(sums["queued_ns"])
    out["kernels"] = col(nk)
    compute_iv = w.loc[~w["comm"], ["rank", "start_ns", "dur_ns"]]
    out["comm_ns"] = col(_union_ns(w[w["comm"]], win))
    peak = _memory_peaks(_select(memory, rank), win)
    out["mem_peak"] = peak.reindex(out.index).astype("Int64")
    compute = col(_union_ns(compute_iv, win))
    out["compute_ns"] = compute
    if comms is not None and not comms.empty:
        wt = _select(_comm.waits(comms), rank)
        wt = _iv(wt["rank"], wt["start_ns"], wt["end_ns"]).assign(p2p=wt["p2p"].to_numpy())
        bubble = col(_union_ns(pd.concat([compute_iv, wt[wt["p2p"]]]), win)) - compute
        waited = col(_union_ns(pd.concat([compute_iv, wt]), win)) - compute
    else:
        bubble = waited = compute * 0
    out["bubble_ns"] = bubble
    out["exposed_comm_ns"] = out["busy_ns"] - compute - bubble
    out["overlapped_comm_ns"] = compute + out["comm_ns"] - out["busy_ns"]
    out["comm_wait_ns"] = waited - bubble
    out = out.reset_index().sort_values(["rank", "step"], kind="stable").reset_index(drop=True)
    return (out, _with_empty_steps(segs, g, win)) if with_gaps else out


def device_breakdown(step_df: pd.DataFrame, memory: pd.DataFrame,
                     rank: int | None = None) -> pd.DataFrame:
    """One row per rank: ``steps`` and the mean step of
    :func:`step_breakdown` (``step_ns``, ``busy_ns``, ``host_gap_ns``,
    ``idle_ns``, ``queued_ns``, ``comm_ns`` and the split of busy time;
    busy + host_gap + idle == step), the fractions ``busy_frac``,
    ``host_gap_frac``, ``idle_frac``, ``compute_frac``, ``exposed_comm_frac``,
    ``bubble_frac`` of the step, and ``mem_peak``: the highest bytes in use on the rank over
    the whole profile (<NA> without memory events)."""
    parts = ["step_ns", "busy_ns", "host_gap_ns", "idle_ns", "queued_ns", "comm_ns",
             "compute_ns", "exposed_comm_ns", "bubble_ns", "overlapped_comm_ns", "comm_wait_ns"]
    g = step_df.groupby("rank")
    out = g[parts].mean()
    out.insert(0, "steps", g.size())
    for part in ("busy", "host_gap", "idle", "compute", "exposed_comm", "bubble"):
        out[f"{part}_frac"] = out[f"{part}_ns"] / out["step_ns"]
    mem = _select(memory, rank)
    out["mem_peak"] = mem.groupby("rank")["in_use"].max().reindex(out.index).astype("Int64")
    return out.reset_index()
