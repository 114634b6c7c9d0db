"""Memory across steps: the pool's level at each step boundary, and growth
from step to step whether it happens inside the steps or between them.

A pool whose use inside a step is steady can still grow from step to
step: a graph compiled anew for every step (its input buffers stay
cached), a cell or optimizer rebuilt each step (new parameters and state),
outputs kept alive by the training loop.  Those allocations happen
between steps, or are freed only when the process ends, so the per-step
leak check (:func:`msprof.analysis.memory.never_freed`) does not see
them; the level at the step boundaries does.

``in_use_begin`` / ``in_use_end``  bytes in use at the step's begin and end
                                   (the latest pool event at or before it;
                                   0 before the first)

The pool's reserved bytes (its arenas) are not recorded by the probes, so
only the bytes in use are followed.  Graphs: the compiled graph an
operator belongs to (``ops.graph_id``); a graph is new in the first step
its kernels ran in.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import memory as _memory

GROWTH_RISING_FRAC = 0.75  # the end-of-step level rose from one step to the next in this
                           # share of the steps or more (a steady pool: in none of them)
GROWTH_MIN_STEPS = 3       # steps after the first needed to call it growth


def _level_at(memory: pd.DataFrame, rank: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bytes in use on ``rank`` at times ``t``: the latest event at or before."""
    out = np.zeros(len(t), dtype="int64")
    for r in np.unique(rank):          # a loop per rank, not per event
        m = memory[memory["rank"] == r].sort_values("ts_ns", kind="stable")
        ts, level = m["ts_ns"].to_numpy(dtype="int64"), m["in_use"].to_numpy(dtype="int64")
        if not len(ts):
            continue
        here = rank == r
        i = np.searchsorted(ts, t[here], side="right") - 1
        out[here] = np.where(i >= 0, level[np.maximum(i, 0)], 0)
    return out


def boundaries(memory: pd.DataFrame, steps: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """Per rank and step: ``rank``, ``step``, ``index`` (the step's position
    in the rank's run: step numbers can repeat), ``start_ns``, ``end_ns``,
    ``in_use_begin``, ``in_use_end`` (module docstring), by rank and start."""
    s = steps if rank is None else steps[steps["rank"] == rank]
    s = s.sort_values(["rank", "start_ns"], kind="stable")
    m = memory if rank is None else memory[memory["rank"] == rank]
    r = s["rank"].to_numpy()
    a = s["start_ns"].to_numpy(dtype="int64")
    b = a + s["dur_ns"].to_numpy(dtype="int64")
    out = pd.DataFrame({"rank": r, "step": s["step"].to_numpy(), "start_ns": a, "end_ns": b,
                        "in_use_begin": _level_at(m, r, a), "in_use_end": _level_at(m, r, b)})
    out.insert(2, "index", out.groupby("rank").cumcount())
    return out


def growth(bounds: pd.DataFrame) -> pd.DataFrame:
    """Per rank: ``steps``, ``first`` and ``last`` (bytes in use at the end
    of the first and the last step), ``bytes_per_step`` (their difference
    over the steps between), ``rising`` (share of the steps after the first
    whose end level is above the previous step's), ``since_step`` (the
    position, ``index``, of the first step whose end level is above the
    first step's; -1: none) and
    ``growing`` (rising in ``GROWTH_RISING_FRAC`` of the steps or more, over
    ``GROWTH_MIN_STEPS`` or more, and more at the end than after the first).

    The first step is the reference, not part of the growth: it allocates
    what a run allocates once (optimizer state, lazily)."""
    cols = ["rank", "steps", "first", "last", "bytes_per_step", "rising", "since_step",
            "growing"]
    rows = []
    for r, g in bounds.groupby("rank", sort=True):
        end = g["in_use_end"].to_numpy(dtype="int64")
        n = len(end) - 1
        if n < 1:
            continue
        rising = float((np.diff(end) > 0).mean())
        above = np.flatnonzero(end > end[0])
        per = (end[-1] - end[0]) / n
        rows.append({"rank": r, "steps": len(end), "first": int(end[0]), "last": int(end[-1]),
                     "bytes_per_step": float(per), "rising": rising,
                     "since_step": int(g["index"].iloc[above[0]]) if len(above) else -1,
                     "growing": bool(n >= GROWTH_MIN_STEPS and rising >= GROWTH_RISING_FRAC
                                     and per > 0)})
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    return pd.DataFrame(rows)[cols]


def held(memory: pd.DataFrame, ops: pd.DataFrame, bounds: pd.DataFrame) -> pd.DataFrame:
    """What the growth is made of: per rank and allocating operator, the
    blocks allocated after the end of the rank's first step and still held
    at the end of its last one: ``blocks``, ``bytes``, ``name``, ``scope``,
    ``graph_id`` (-1 for blocks no operator allocated), ``between`` (bytes
    of them allocated between steps); largest first."""
    cols = ["rank", "op_id", "name", "scope", "graph_id", "blocks", "bytes", "between"]
    b = _memory.blocks(memory)
    if b.empty or bounds.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    lim = bounds.groupby("rank").agg(t0=("end_ns", "first"), t1=("end_ns", "last"))
    t0 = b["rank"].map(lim["t0"]).to_numpy(dtype="float64")
    t1 = b["rank"].map(lim["t1"]).to_numpy(dtype="float64")
    alloc, free = b["alloc_ns"].to_numpy(), b["free_ns"].to_numpy()
    keep = (alloc > t0) & (alloc <= t1) & (free > t1)
    b = b[keep].copy()
    if b.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    win = bounds.sort_values("start_ns", kind="stable")
    at = pd.merge_asof(b.sort_values("alloc_ns", kind="stable"), win[["rank", "start_ns", "end_ns"]],
                       left_on="alloc_ns", right_on="start_ns", by="rank", direction="backward")
    at["between"] = np.where(at["end_ns"].notna() & (at["alloc_ns"] < at["end_ns"]), 0, at["size"])
    g = at.groupby(["rank", "op_id"]).agg(blocks=("size", "size"), bytes=("size", "sum"),
                                          between=("between", "sum")).reset_index()
    g = _memory.with_op_names(g, ops)
    gid = ops.drop_duplicates(["rank", "op_id"], keep="last").set_index(["rank", "op_id"])["graph_id"]
    g["graph_id"] = [int(gid.get((r, o), -1)) for r, o in zip(g["rank"], g["op_id"])]
    return g[cols].sort_values(["rank", "bytes"], ascending=[True, False],
                               kind="stable").reset_index(drop=True)


def new_graphs(kernels: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Per rank and step: ``new_graphs``, the compiled graphs whose kernels
    ran for the first time in that step (steps without one left out; a
    step is its position in the rank's run, ``index``, as step numbers can
    repeat: a training cell built anew counts from 0 again), and
    ``same_shapes``: whether each of them has the operator types and the
    bytes of a graph that ran before (the same graph compiled again: a cell
    or optimizer built anew) rather than new shapes (the inputs changed)."""
    cols = ["rank", "index", "new_graphs", "same_shapes"]
    k = kernels[kernels["step"] >= 0]
    if k.empty or ops.empty or steps.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    reg = ops.drop_duplicates(["rank", "op_id"], keep="last")[["rank", "op_id", "graph_id"]]
    # first per operator, then per graph: a merge of one row per operator,
    # not per kernel
    k = k.groupby(["rank", "op_id"], as_index=False)["start_ns"].min()
    k = k.merge(reg, on=["rank", "op_id"], how="inner")
    first = k.groupby(["rank", "graph_id"])["start_ns"].min().reset_index()
    first["index"] = -1
    for r in first["rank"].unique():          # a loop per rank
        starts = np.sort(steps.loc[steps["rank"] == r, "start_ns"].to_numpy(dtype="int64"))
        here = (first["rank"] == r).to_numpy()
        first.loc[here, "index"] = np.searchsorted(
            starts, first.loc[here, "start_ns"].to_numpy(dtype="int64"), side="right") - 1
    first = first[first["index"] >= 0]
    sig = reg.merge(ops.drop_duplicates(["rank", "op_id"], keep="last")[
        ["rank", "op_id", "type", "bytes"]], on=["rank", "op_id"])
    sig = sig.sort_values(["rank", "graph_id", "op_id"], kind="stable").groupby(
        ["rank", "graph_id"]).agg(types=("type", tuple), bytes=("bytes", "sum")).reset_index()
    first = first.merge(sig, on=["rank", "graph_id"], how="left").sort_values(
        ["rank", "index"], kind="stable")
    seen = first.duplicated(["rank", "types", "bytes"], keep="first")
    first = first.assign(same=seen.to_numpy())
    out = first.groupby(["rank", "index"]).agg(new_graphs=("graph_id", "size"),
                                              same_shapes=("same", "all")).reset_index()
    return out[cols]
