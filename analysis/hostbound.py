"""Host-bound analysis: is the host (Python, the framework, the launch path)
keeping the device fed?

``queue_ns``     launch-to-execute delay of a kernel (``start_ns -
                 launch_ns``): long when the host runs ahead (healthy),
                 near zero when the device eats kernels as fast as they come
``launch_cost``  per rank, the median time between two consecutive
                 kernel launches by the host: what issuing one kernel costs
``tiny``         a kernel shorter than its rank's launch cost: the device
                 finishes it before the host can issue the next one, so a
                 run of them leaves the device waiting on the host
held time        a run of tiny kernels holds the device from its first
                 kernel's start to its last one's end (:func:`tiny_time`)
host gaps        stretches where no kernel ran or was queued
                 (:func:`msprof.analysis.breakdown.gaps`), charged to the
                 operator whose kernel ended them

Kernels with an unknown launch time (``launch_ns`` <= 0) are left out of
the launch statistics.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import memo
from msprof.analysis.groupstats import Groups
from msprof.analysis.intervals import rank_chunks, rank_start_order
from msprof.analysis.opstats import op_groups, operators, with_ops


def _select(df: pd.DataFrame, rank: int | None) -> pd.DataFrame:
    return df if rank is None else df[df["rank"] == rank]


def launch_cost(kernels: pd.DataFrame) -> pd.Series:
    """Per rank: median ns between consecutive kernel launches."""
    return memo.once("launch_cost", (kernels,), lambda: _cost(
        kernels["rank"].to_numpy(), kernels["launch_ns"].to_numpy(dtype="int64")))


def _cost(rank: np.ndarray, launch: np.ndarray) -> pd.Series:
    """:func:`launch_cost` of kernels given as arrays."""
    known = launch > 0
    if not known.any():
        return pd.Series(dtype="float64")
    if not known.all():
        rank, launch = rank[known], launch[known]
    codes, ranks = pd.factorize(rank, sort=True)
    lo = int(launch.min())
    span = int(launch.max()) - lo + 1
    if span * len(ranks) < 2**62:
        # Only the launch times in order matter, not which kernel: sort one
        # packed (rank, launch) key instead of sorting rows.
        key = codes.astype("int64") * span
        del codes
        key += launch - lo
        key.sort()
        code = key // span
        t = key - code * span
        del key
    else:
        order = np.lexsort((launch, codes))
        code, t = codes[order], launch[order]
    same = code[1:] == code[:-1]
    gaps = Groups(code[1:][same], len(ranks))
    index = pd.Index(ranks, name="rank")
    return pd.Series(gaps.median(np.diff(t)[same]), index=index, name="launch_ns")


def _launches(kernels: pd.DataFrame):
    """The kernels with a known launch: their rows, ``queue_ns``, ``dur_ns``,
    ``tiny`` (shorter than their rank's launch cost) and the position of
    their rank in :func:`launch_cost`'s index."""
    launch = kernels["launch_ns"].to_numpy(dtype="int64")
    known = launch > 0
    rows = np.flatnonzero(known)
    # Every launch known (the usual case): the columns as they are, no copies.
    pick = (lambda a: a) if len(rows) == len(known) else (lambda a: a[rows])
    del known
    start = pick(kernels["start_ns"].to_numpy(dtype="int64"))
    queue = np.maximum(start - pick(launch), 0)
    dur = pick(kernels["dur_ns"].to_numpy(dtype="int64"))
    cost = launch_cost(kernels)
    at = np.searchsorted(cost.index.to_numpy(), pick(kernels["rank"].to_numpy()))
    own = np.nan_to_num(cost.to_numpy()[at], nan=0.0) if len(rows) else np.zeros(0)
    return rows, queue, dur, dur < own, at


def launch_stats(kernels: pd.DataFrame, ops: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """Per operator (aggregated over ranks): ``calls`` with a known launch,
    ``queue_mean_ns``, ``queue_p50_ns``, ``queue_p99_ns``, ``mean_ns``
    (duration), ``tiny`` (calls shorter than their rank's launch cost) and
    ``tiny_share``; most tiny calls first."""
    k = _select(kernels, rank)
    cols = ["name", "type", "calls", "queue_mean_ns", "queue_p50_ns", "queue_p99_ns",
            "mean_ns", "tiny", "tiny_share"]
    rows, queue, dur, tiny, _ = _launches(k)
    if not len(rows):
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    codes, table = operators(k, ops)
    g, _, out = op_groups(codes, table, ["name", "type"], rows)
    out["calls"] = g.size()
    out["queue_mean_ns"] = g.mean(queue)
    out["mean_ns"] = g.mean(dur)
    out["tiny"] = g.sum(tiny.astype("int64"))
    out["queue_p50_ns"], out["queue_p99_ns"] = g.quantiles(queue, [0.5, 0.99])
    out["tiny_share"] = out["tiny"] / out["calls"]
    return out[cols].sort_values(["tiny", "calls"], ascending=False, kind="stable").reset_index(drop=True)


def rank_summary(kernels: pd.DataFrame, step_df: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """Per rank: ``launch_cost_ns``, ``kernels`` (with a known launch),
    ``tiny`` and ``tiny_share``, ``queue_p50_ns`` and ``host_gap_ns`` (mean
    per step, from the step breakdown)."""
    k = _select(kernels, rank)
    cost = launch_cost(k)
    rows, queue, _, tiny, at = _launches(k)
    g = Groups(at, len(cost))           # per rank, in launch_cost's order
    index = pd.Index(cost.index.to_numpy(), dtype=k["rank"].dtype, name="rank")
    out = pd.DataFrame({"launch_cost_ns": cost, "kernels": pd.Series(g.size(), index=index),
                        "tiny": pd.Series(g.sum(tiny.astype("int64")), index=index),
                        "queue_p50_ns": pd.Series(g.median(queue), index=index)})
    out["tiny_share"] = out["tiny"] / out["kernels"]
    hg = step_df.groupby("rank")["host_gap_ns"].mean() if len(step_df) else pd.Series(dtype=float)
    out = out.join(hg.rename("host_gap_ns"), how="outer")
    out.index.name = "rank"
    return out.reset_index()


def tiny_time(kernels: pd.DataFrame, ops: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """The device time tiny operators hold (those whose median kernel is
    shorter than the rank's launch cost, and every operator of a group
    whose median kernel is), per rank, step and group of
    operators (``scope`` and ``type``): ``kernels``, ``ops`` (distinct
    operators), ``held_ns`` (of it ``starved_ns``, see below, and
    ``overhead_ns``: all but the kernels' own time) and ``names`` (the
    operators, most time first).

    A run of tiny kernels (consecutive on a stream) holds the device from
    its first kernel's start to its last one's end: their own time and the
    gaps between them, launch and dispatch overhead (the host issuing the
    next one, the stream picking it up), all of which fusing them would
    give back.  And before that, from the run's first launch to its first
    kernel's start, the stream waits for the host to launch the run, but
    for the work already queued on it (at its operators' fastest time):
    that is ``starved_ns`` (a launch path that shares a lock with the
    device's executor, like this runtime's Python, starves the executor,
    and stretches the kernels it runs meanwhile, while the host issues
    hundreds of launches).  Kernels outside steps, and those with an unknown
    launch time, are left out."""
    cols = ["rank", "step", "scope", "type", "kernels", "ops", "held_ns", "starved_ns",
            "overhead_ns", "names"]
    k = _select(kernels, rank)
    launch = k["launch_ns"].to_numpy(dtype="int64")
    use = (launch > 0) & (k["step"].to_numpy() >= 0)
    if not use.any():
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    rk_all = k["rank"].to_numpy()
    known = launch > 0
    # Usually every kernel with a known launch is inside a step: the cost is
    # then launch_cost's, kept per profile table.
    cost = launch_cost(k) if (use == known).all() else _cost(rk_all[use], launch[use])
    del known
    # tiny operators: their median kernel is shorter than the launch cost
    # (every call counts, the ones a busy machine stretched too); per
    # operator, on its code (no groupby over the kernels)
    codes, table = operators(k, ops)
    dur = k["dur_ns"].to_numpy(dtype="int64")
    per_op = Groups(codes[use], len(table))
    own_cost = cost.reindex(table["rank"].to_numpy()).fillna(0).to_numpy()
    # ... and every operator of a group (same rank, scope and type) whose
    # median kernel is: fusing a chain fuses all of it, the links whose
    # median came out a little above the launch cost too (37 of a chain of
    # 401 reshapes, 26 of its gradient's, whose kernels last about a launch)
    group = pd.MultiIndex.from_arrays([table["rank"].to_numpy(), _parent_scope(table),
                                       table["type"].astype(str).to_numpy()])
    gcode, gkeys = pd.factorize(group)
    per_group = Groups(gcode[codes[use]], len(gkeys))
    tiny_op = ((per_op.median(dur[use]) < own_cost)
               | (per_group.median(dur[use])[gcode] < own_cost))
    tiny_all = tiny_op[codes]
    # an operator's own time: its fastest kernel (waiting on the host only
    # ever stretches a kernel)
    fastest_all = per_op.min(dur[use])[codes]
    st_all, start_all = k["stream"].to_numpy(), k["start_ns"].to_numpy(dtype="int64")
    # The kernels used, by rank, stream, then start (ties keep the table's
    # order), a chunk of whole ranks at a time: runs never span ranks.
    by_start = rank_start_order(k)
    by_start = by_start[use[by_start]]
    parts = []
    for c in rank_chunks(rk_all[by_start]):
        rows = by_start[c]
        rows = rows[np.lexsort((st_all[rows], rk_all[rows]))]
        rk, st, tiny = rk_all[rows], st_all[rows], tiny_all[rows]
        start, d = start_all[rows], dur[rows]
        end = start + d
        same = np.zeros(len(rows), dtype=bool)
        same[1:] = (rk[1:] == rk[:-1]) & (st[1:] == st[:-1]) & tiny[:-1]
        gap = np.zeros(len(rows), dtype="int64")
        gap[1:] = np.clip(start[1:] - end[:-1], 0, None)
        held = d + np.where(same, gap, 0)
        starved = _starved(rk * 1024 + st, start, end, launch[rows], tiny, same,
                           fastest_all[rows])
        parts.append((rows[tiny], (held + starved)[tiny], starved[tiny],
                      (held + starved - d)[tiny]))
    rows, held, starved, overhead = (np.concatenate([p[i] for p in parts]) for i in range(4))
    t = with_ops(k.take(rows).assign(held_ns=held, starved_ns=starved, overhead_ns=overhead), ops)
    if t.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    t["scope"] = _parent_scope(t)
    g = t.groupby(["rank", "step", "scope", "type"], sort=False)
    out = g.agg(kernels=("held_ns", "size"), ops=("op_id", "nunique"),
                held_ns=("held_ns", "sum"), starved_ns=("starved_ns", "sum"),
                overhead_ns=("overhead_ns", "sum")).reset_index()
    by_name = t.groupby(["scope", "type", "name"], sort=False)["held_ns"].sum()
    names = {key: list(v.sort_values(ascending=False, kind="stable").index.get_level_values("name"))
             for key, v in by_name.groupby(level=["scope", "type"], sort=False)}
    out["names"] = [names[(a, b)] for a, b in zip(out["scope"], out["type"])]
    return out[cols].sort_values(["rank", "step", "held_ns"], ascending=[True, True, False],
                                 kind="stable").reset_index(drop=True)


def _parent_scope(t: pd.DataFrame) -> np.ndarray:
    """The scope each operator sits in: its path without its own name."""
    path = t["scope"].astype(str)
    own = path.str.rsplit("/", n=1).str[-1] == t["name"].astype(str)
    return path.where(~own, path.str.rpartition("/")[0]).to_numpy()


def _starved(rk, start, end, launch, tiny, same, fastest) -> np.ndarray:
    """Per kernel (sorted by ``rk``, a rank and stream key, then start):
    for the first kernel of each run of two or more tiny kernels, the time
    from the run's first launch to that kernel's start that the stream did
    not spend on work already queued or running (each such kernel counted at
    its operator's ``fastest`` time: while the host launches the run it
    holds the launch path, and the queued kernels wait on it, stretched, so
    the stretch is the run's too); 0 elsewhere.  A run's window starts
    after the previous run of its stream has ended (that one holds the
    stream until then)."""
    out = np.zeros(len(rk), dtype="int64")
    first = tiny & ~same                     # a run's first kernel
    nxt = np.zeros(len(rk), dtype=bool)
    nxt[:-1] = same[1:]                      # ... followed by another tiny one
    heads = np.flatnonzero(first & nxt)
    if not len(heads):
        return out
    run = np.cumsum(first)                   # run number of every kernel
    a = pd.Series(launch[tiny]).groupby(run[tiny]).min().reindex(run[heads]).to_numpy()
    e = pd.Series(end[tiny]).groupby(run[tiny]).max().reindex(run[heads]).to_numpy()
    b = start[heads]
    # each window starts after the previous run of its stream has ended
    # (heads are in stream, then start order)
    r = rk[heads]
    reset = np.r_[True, r[1:] != r[:-1]]
    prev_e = np.where(reset, np.iinfo("int64").min, np.r_[0, e[:-1]])
    a = np.maximum(a, _running_max_by_group(prev_e, reset))
    ok = a < b
    heads, a, b = heads[ok], a[ok], b[ok]
    # the queued work: kernels of the same stream starting in [a, b), at
    # their fastest; found by one search on start times laid end to end
    # per stream (the kernels are sorted by stream, then start)
    t0 = int(start.min())
    span = int(start.max()) - t0 + 1
    group = np.r_[0, np.cumsum(rk[1:] != rk[:-1])]
    flat = group * span + (start - t0)
    work = np.r_[0, np.cumsum(np.where(tiny, 0, fastest))]
    lo = np.searchsorted(flat, group[heads] * span + (a - t0))
    hi = np.searchsorted(flat, group[heads] * span + (b - t0))
    queued = work[hi] - work[lo]
    # ... and what is left of the kernel already running at the window's
    # start (at its fastest, less the time it had run)
    before = np.maximum(lo - 1, 0)
    running = (lo > 0) & (group[before] == group[heads]) & (end[before] > a) & ~tiny[before]
    queued += np.where(running, np.clip(fastest[before] - (a - start[before]), 0, None), 0)
    out[heads] = np.clip((b - a) - queued, 0, None)
    return out


def _running_max_by_group(v: np.ndarray, reset: np.ndarray) -> np.ndarray:
    """Running maximum of ``v`` that restarts where ``reset`` is true."""
    out = np.empty_like(v)
    cur = v[0] if len(v) else 0
    for i in range(len(v)):  # one item per run of tiny kernels, not per kernel
        cur = v[i] if reset[i] else max(cur, v[i])
        out[i] = cur
    return out


def host_gaps_by_op(gaps: pd.DataFrame, ops: pd.DataFrame, n_steps: int) -> pd.DataFrame:
    """Host-bound gaps per operator that ended them: ``gaps``, ``host_ns``
    (total) and ``per_step_ns`` (over ``n_steps`` rank-steps), largest
    first."""
    g = gaps[gaps["host_ns"] > 0]
    cols = ["name", "gaps", "host_ns", "per_step_ns"]
    if g.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    g = g.rename(columns={"next_op_id": "op_id"}).assign(dur_ns=g["host_ns"])
    g = with_ops(g[["rank", "op_id", "dur_ns"]], ops)
    out = g.groupby("name").agg(gaps=("dur_ns", "size"), host_ns=("dur_ns", "sum")).reset_index()
    out["per_step_ns"] = out["host_ns"] / max(n_steps, 1)
    return out[cols].sort_values("host_ns", ascending=False, kind="stable").reset_index(drop=True)


def verdict(summary: pd.DataFrame, step_df: pd.DataFrame, framework: str | None = None) -> str:
    """One line; PyTorch on a CPU (``framework`` "torch") in its own words:
    no device, Python between operators."""
    if summary.empty or not len(step_df):
        return "no launch times recorded"
    total = step_df["step_ns"].sum()
    frac = step_df["host_gap_ns"].sum() / total if len(step_df) and total > 0 else np.nan
    tiny = summary["tiny"].sum() / max(summary["kernels"].sum(), 1)
    if framework == "torch":
        return (f"Python between operators took {frac:.0%} of step time; {tiny:.0%} of "
                f"operators ran shorter than the time from one operator's start to the next's")
    return (f"device waited on the host {frac:.0%} of step time; {tiny:.0%} of kernels were "
            f"shorter than their launch cost")
