"""Device memory: the pool's bytes in use over time per device, its peak and
what was live at the peak, and allocations never freed (leaks).

Allocations and frees pair by ``(rank, addr)`` in time order: a free ends
the latest allocation of its address before it.  An allocation with no
free is *never freed*; one made before the first step (parameters,
persistent buffers) is expected to live for the whole run, and so is one
an operator makes in a single step (optimizer state created lazily).  A
*leak* is an operator that leaves never-freed blocks behind in two steps
or more: its pool use grows with every step.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import memo
from msprof.analysis.groupstats import Groups
from msprof.analysis.intervals import Timeline


_INF = np.iinfo("int64").max
OUTSIDE_OPS = "(outside ops)"   # op_id -1: parameters, optimizer state, graph inputs


def _select(df: pd.DataFrame, rank: int | None) -> pd.DataFrame:
    return df if rank is None else df[df["rank"] == rank]


def blocks(memory: pd.DataFrame) -> pd.DataFrame:
    """One row per allocation: ``rank``, ``addr``, ``size``, ``op_id``,
    ``alloc_ns``, ``free_ns`` (int64 max when never freed), ``freed``.
    Kept per profile table (callers must not modify it)."""
    return memo.once("blocks", (memory,), lambda: _blocks(memory))


def _blocks(memory: pd.DataFrame) -> pd.DataFrame:
    ts, rk, ad, sz = (memory[c].to_numpy() for c in ("ts_ns", "rank", "addr", "size"))
    order = np.lexsort((ts, ad, rk))
    ts, rk, ad, sz = ts[order], rk[order], ad[order], sz[order]
    freed = np.zeros(len(order), dtype=bool)
    freed[:-1] = (rk[1:] == rk[:-1]) & (ad[1:] == ad[:-1]) & (sz[1:] < 0)
    free_ns = np.full(len(order), _INF, dtype="int64")
    free_ns[:-1] = np.where(freed[:-1], ts[1:], _INF)
    a = sz > 0
    return pd.DataFrame({"rank": rk[a], "addr": ad[a], "size": sz[a],
                         "op_id": memory["op_id"].to_numpy()[order[a]], "alloc_ns": ts[a],
                         "free_ns": free_ns[a], "freed": freed[a]})


def timeline(memory: pd.DataFrame, rank: int | None = None, points: int = 200) -> pd.DataFrame:
    """Bytes in use per device over time, at most ``points`` rows per rank:
    the profile's span cut into equal bins, each with the highest
    ``in_use`` reached in it (``ts_ns`` = bin start) so peaks survive the
    thinning."""
    m = _select(memory, rank)
    if m.empty:
        return pd.DataFrame({"rank": pd.Series(dtype="int32"), "ts_ns": pd.Series(dtype="int64"),
                             "in_use": pd.Series(dtype="int64")})
    ts = m["ts_ns"].to_numpy(dtype="int64")
    t0, t1 = int(ts.min()), int(ts.max())
    width = max((t1 - t0) // max(points, 1) + 1, 1)
    nbins = (t1 - t0) // width + 1
    rank = m["rank"].to_numpy()
    rcode, ranks = pd.factorize(rank, sort=True)
    # One group per (rank, bin), numbered in that order (as groupby sorts).
    g = Groups(rcode.astype("int64") * nbins + (ts - t0) // width, len(ranks) * nbins)
    has = np.flatnonzero(g.size() > 0)
    return pd.DataFrame({"rank": ranks[has // nbins].astype(rank.dtype),
                         "ts_ns": t0 + (has % nbins) * width,
                         "in_use": g.max(m["in_use"].to_numpy(dtype="int64"))[has]})


def peaks(memory: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """Per rank: ``peak`` bytes in use, ``peak_ns`` (its first time),
    ``live_blocks`` at that moment, ``final`` bytes in use at the end."""
    m = _select(memory, rank)
    cols = ["rank", "peak", "peak_ns", "live_blocks", "final"]
    if m.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    pk, live, code = _at_peaks(m)
    pk["live_blocks"] = np.bincount(code[live], minlength=len(pk)).astype("int64")
    return pk[cols]


def _at_peaks(m: pd.DataFrame):
    """Per rank of ``m``: ``rank``, ``peak`` (the first highest ``in_use`` in
    time order), ``peak_ns`` and ``final``; and for each block of
    :func:`blocks` whether it was live at its rank's peak, and its rank's
    row.  Kept per profile table (callers must not modify them)."""
    pk, live, code = memo.once("at_peaks", (m,), lambda: _peaks(m))
    return pk.copy(), live, code


def _peaks(m: pd.DataFrame):
    t = Timeline(m["rank"].to_numpy(), m["ts_ns"].to_numpy())   # by rank, then time
    in_use = m["in_use"].to_numpy(dtype="int64")[t.order]
    starts, ends = t.bounds[:-1], t.bounds[1:]
    peak = np.maximum.reduceat(in_use, starts)
    at = np.where(in_use == np.repeat(peak, ends - starts), np.arange(len(t)), len(t))
    first = np.minimum.reduceat(at, starts)
    pk = pd.DataFrame({"rank": t.ranks.astype(m["rank"].dtype), "peak": peak,
                       "peak_ns": t.t[first], "final": in_use[ends - 1]})
    b = blocks(m)
    code = np.searchsorted(t.ranks, b["rank"].to_numpy())
    when = t.t[first][code]
    live = (b["alloc_ns"].to_numpy() <= when) & (b["free_ns"].to_numpy() > when)
    return pk, live, code


def live_at_peak(memory: pd.DataFrame, ops: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """What held the memory at each rank's peak: one row per (rank,
    operator) with ``blocks``, ``bytes`` and ``share`` of the peak, largest
    first; ``name``/``scope`` of the allocating operator (OUTSIDE_OPS for
    blocks allocated outside any operator)."""
    m = _select(memory, rank)
    if m.empty:
        pk, live, code = None, np.zeros(0, dtype=bool), np.zeros(0, dtype=np.intp)
    else:
        pk, live, code = _at_peaks(m)
    b = blocks(m)
    live = b[live].assign(peak=pk["peak"].to_numpy()[code[live]] if pk is not None else 0)
    g = live.groupby(["rank", "op_id"]).agg(blocks=("size", "size"), bytes=("size", "sum"),
                                            peak=("peak", "first")).reset_index()
    g = with_op_names(g, ops)
    g["share"] = g["bytes"] / g["peak"]
    cols = ["rank", "op_id", "name", "scope", "blocks", "bytes", "share"]
    return g[cols].sort_values(["rank", "bytes"], ascending=[True, False],
                               kind="stable").reset_index(drop=True)


def with_op_names(df: pd.DataFrame, ops: pd.DataFrame) -> pd.DataFrame:
    """Adds the allocating operator's ``name`` and ``scope`` (by rank and
    op_id, else op_id alone; ``op<id>`` when unregistered; OUTSIDE_OPS for
    a block no operator allocated, op_id < 0)."""
    reg = ops.drop_duplicates(["rank", "op_id"], keep="last")
    out = df.merge(reg[["rank", "op_id", "name", "scope"]], on=["rank", "op_id"], how="left")
    anyrank = reg.drop_duplicates("op_id", keep="last").set_index("op_id")
    miss = out["name"].isna()
    out.loc[miss, "name"] = out.loc[miss, "op_id"].map(anyrank["name"])
    out.loc[miss, "scope"] = out.loc[miss, "op_id"].map(anyrank["scope"])
    outside = out["name"].isna() & (out["op_id"] < 0)
    out.loc[outside, "name"] = OUTSIDE_OPS
    miss = out["name"].isna()
    out.loc[miss, "name"] = "op" + out.loc[miss, "op_id"].astype(str)
    out["scope"] = out["scope"].fillna("")
    return out


def never_freed(memory: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame,
                rank: int | None = None) -> pd.DataFrame:
    """Allocations never freed, grouped by (rank, operator): ``blocks``,
    ``bytes``, ``first_ns``/``last_ns`` (allocation times), ``steps_hit``
    (steps in which the operator left such a block), ``per_step`` (bytes
    per step over the rank's steps), ``leak`` (steps_hit >= 2: grows every
    step) and ``name``/``scope``.  Leaks first, then by bytes."""
    m, st = _select(memory, rank), _select(steps, rank)
    b = blocks(m)
    # Still held when the rank's last step ended: a framework whose
    # interpreter frees everything at exit (PyTorch) frees a leak too, after
    # the training is over.
    last_end = (st["start_ns"] + st["dur_ns"]).groupby(st["rank"]).max()
    held_after = b["rank"].map(last_end).fillna(np.iinfo("int64").max).to_numpy()
    b = b[~b["freed"] | (b["free_ns"].to_numpy() > held_after)]
    cols = ["rank", "op_id", "name", "scope", "blocks", "bytes", "first_ns", "last_ns",
            "steps_hit", "per_step", "leak"]
    if b.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    w = st[["rank", "step", "start_ns", "dur_ns"]].sort_values("start_ns", kind="stable")
    b = pd.merge_asof(b.sort_values("alloc_ns", kind="stable"), w, left_on="alloc_ns",
                      right_on="start_ns", by="rank", direction="backward")
    inside = b["start_ns"].notna() & (b["alloc_ns"] < b["start_ns"] + b["dur_ns"])
    b["step"] = b["step"].where(inside)
    g = b.groupby(["rank", "op_id"]).agg(blocks=("size", "size"), bytes=("size", "sum"),
                                         first_ns=("alloc_ns", "min"), last_ns=("alloc_ns", "max"),
                                         steps_hit=("step", "nunique")).reset_index()
    nsteps = g["rank"].map(st.groupby("rank").size()).fillna(0)
    in_steps = b[inside].groupby(["rank", "op_id"])["size"].sum()
    g["per_step"] = (g.set_index(["rank", "op_id"]).index.map(in_steps).fillna(0).to_numpy()
                     / nsteps.where(nsteps > 0)).fillna(0)
    g["leak"] = g["steps_hit"] >= 2
    g = with_op_names(g, ops)
    return g[cols].sort_values(["leak", "bytes"], ascending=[False, False],
                               kind="stable").reset_index(drop=True)


def verdict(pk: pd.DataFrame, nf: pd.DataFrame) -> str:
    if pk.empty:
        return "no memory events recorded"
    leaks = nf[nf["leak"]] if not nf.empty else nf
    top = pk.loc[pk["peak"].idxmax()]
    line = f"peak {int(top['peak']):,} bytes on rank {int(top['rank'])}"
    if len(leaks):
        return line + f"; {len(leaks)} leaking operator(s), {leaks['per_step'].sum():,.0f} bytes/step"
    return line + "; no leak"
