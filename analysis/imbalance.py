"""Imbalance between ranks: load-imbalance index per step, slow ranks and
slow links.

In synchronous training a rank that computes longer than the others makes
every other rank wait at the next collective.  Both sides show in a
profile: the slow rank's ``compute_ns`` per step (the step breakdown), and
the others' waits (:func:`msprof.analysis.comm.waits`) whose last arrival
is the slow rank.  The load-imbalance index of a step is
``max / mean - 1`` of the ranks' compute time (0 when perfectly balanced;
0.25: the slowest rank computes 25 % more than the average).

A slow link is a pair of ranks whose point-to-point bandwidth is well below
the other pairs', or a communication group whose bus bandwidth is well below
other groups' for the same collective and size.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import comm as _comm
from msprof.analysis import intervals as _intervals
from msprof.analysis.units import fmt_ns

SLOW_LINK_RATIO = 0.5   # a pair below this fraction of the median pair's bandwidth


def per_step(step_df: pd.DataFrame) -> pd.DataFrame:
    """Per step (over the ranks that ran it): ``ranks``, ``compute_max_ns``,
    ``compute_mean_ns``, ``compute_min_ns``, ``slowest_rank``,
    ``imbalance`` (max/mean - 1) and ``wait_mean_ns`` (mean comm_wait_ns)."""
    cols = ["step", "ranks", "compute_max_ns", "compute_mean_ns", "compute_min_ns",
            "slowest_rank", "imbalance", "wait_mean_ns"]
    if step_df.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    s = step_df.sort_values(["step", "compute_ns", "rank"], ascending=[True, False, True],
                            kind="stable")
    g = s.groupby("step", sort=True)
    out = g.agg(ranks=("rank", "size"), compute_max_ns=("compute_ns", "max"),
                compute_mean_ns=("compute_ns", "mean"), compute_min_ns=("compute_ns", "min"),
                slowest_rank=("rank", "first"), wait_mean_ns=("comm_wait_ns", "mean"))
    out["imbalance"] = (out["compute_max_ns"] / out["compute_mean_ns"] - 1).where(
        out["compute_mean_ns"] > 0, 0.0)
    return out.reset_index()[cols]


def ranks(step_df: pd.DataFrame, comms: pd.DataFrame) -> pd.DataFrame:
    """Per rank: ``compute_ns`` (median per step of its compute, less the
    part of it its compute threads spent waiting for a CPU: ``compute_ns -
    compute_cpu_wait_ns`` of the step breakdown), ``cpu_wait_ns`` (median
    per step of that part), ``others_ns`` (median over steps of the other ranks' median
    compute in the same step), ``excess_ns`` (median over steps of its
    compute minus the other ranks' median in that step), ``wait_ns`` (its
    own mean wait in collectives per step) and ``caused_wait_ns`` (how late
    it arrives at the other ranks' collectives: :func:`_caused_waits`),
    sorted by excess, largest first.

    Medians over steps, compared step by step: a slow rank is slow in
    every step, while the first step (warm-up: first touches, lazy
    allocations, connection set-up) or one hiccup of the machine can take
    several times as long as the others on any rank.  Time spent waiting
    for a CPU is left out: a rank that shares its cores with other busy
    processes is not slow at its work, its machine is oversubscribed
    (:func:`msprof.analysis.findings.cpu_contention` reports that)."""
    cols = ["rank", "compute_ns", "cpu_wait_ns", "others_ns", "excess_ns", "wait_ns",
            "caused_wait_ns"]
    if step_df.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    cpu_wait = step_df["compute_cpu_wait_ns"] if "compute_cpu_wait_ns" in step_df else 0
    step_df = step_df.assign(cpu_wait_ns=cpu_wait, on_cpu_ns=step_df["compute_ns"] - cpu_wait)
    g = step_df.groupby("rank")
    out = pd.DataFrame({"compute_ns": g["on_cpu_ns"].median(),
                        "cpu_wait_ns": g["cpu_wait_ns"].median(),
                        "wait_ns": g["comm_wait_ns"].mean(), "steps": g.size()})
    per = step_df.pivot_table(index="step", columns="rank", values="on_cpu_ns")
    others, excess = {}, {}
    for r in per.columns:  # a loop per rank, not per event
        rest = per.drop(columns=r).median(axis=1) if per.shape[1] > 1 else per[r] * float("nan")
        others[r] = rest.median()
        excess[r] = (per[r] - rest).median()
    out["others_ns"] = out.index.map(others)
    out["excess_ns"] = out.index.map(excess).fillna(0)
    out["caused_wait_ns"] = out.index.map(_caused_waits(step_df, comms)).fillna(0.0)
    out.index.name = "rank"
    return out.reset_index()[cols].sort_values("excess_ns", ascending=False,
                                                kind="stable").reset_index(drop=True)


def _caused_waits(step_df: pd.DataFrame, comms: pd.DataFrame | None) -> pd.Series:
    """Per rank, what its late arrival costs the others: the median over
    steps of the other ranks' mean loss to it in the step (0 in a step in
    which it made nobody wait).

    A rank's loss to it in a step is the larger of two lower bounds (had it
    arrived with the others, they would have gone on at once):

    - the longest single wait for it.  A collective that waits beside
      another counts once: DDP runs two gradient buckets together, and
      summing their waits said 93 ms in a 63 ms step.  The waiter's own
      work under the wait still costs it, as the transfer that follows
      now runs with no compute beside it;
    - the waits for it that no compute of the waiter's hid (its share of
      the step's ``comm_wait_ns``): where it is late at several
      collectives in a row (the runtime's two allreduces a step, rank 0
      waiting 8 ms at the first and 20 ms at the second beside a step
      23 ms longer), the longest wait alone misses the first one's part.

    Its compute excess alone would leave out what else delays its arrival
    (its waits for a CPU, the time between its operators)."""
    if comms is None or comms.empty:
        return pd.Series(dtype="float64")
    w = _comm.waits(comms)
    w = w[~w["p2p"] & (w["rank"] != w["waited_for"])]
    if w.empty:
        return pd.Series(dtype="float64")
    steps = (step_df[["rank", "step", "start_ns"]].astype({"rank": "int64"})
             .sort_values("start_ns"))
    w = pd.merge_asof(w.astype({"rank": "int64"}).sort_values("start_ns"), steps,
                      on="start_ns", by="rank", direction="backward").dropna(subset=["step"])
    key = ["waited_for", "step", "rank"]
    g = w.groupby(key)
    lost = pd.DataFrame({"longest": g["wait_ns"].max(), "union": _union_per_group(w, key)})
    exposed = (step_df.astype({"rank": "int64"}).set_index(["step", "rank"])["comm_wait_ns"]
               if "comm_wait_ns" in step_df else None)
    if exposed is not None:
        # the waiter's exposed wait, shared among the ranks it waited for
        lost = lost.join(exposed.rename("exposed"), on=["step", "rank"])
        share = lost["union"] / lost.groupby(level=["step", "rank"])["union"].transform("sum")
        lost["longest"] = np.maximum(lost["longest"], lost["exposed"].fillna(0) * share)
    n_other = max(step_df["rank"].nunique() - 1, 1)
    per_step = lost["longest"].groupby(level=["waited_for", "step"]).sum() / n_other
    # every step of the run counts, one in which nobody waited for it as 0
    grid = pd.MultiIndex.from_product([per_step.index.unique("waited_for"),
                                       sorted(step_df["step"].unique())],
                                      names=["waited_for", "step"])
    return per_step.reindex(grid, fill_value=0.0).groupby(level="waited_for").median()


def _union_per_group(iv: pd.DataFrame, key: list[str]) -> pd.Series:
    """Per group of ``key``, the time covered by its intervals
    (``start_ns``, ``end_ns``; overlapping ones count once)."""
    g = iv.groupby(key)
    seg = _intervals.segments(pd.DataFrame({"rank": g.ngroup(), "start_ns": iv["start_ns"],
                                            "end_ns": iv["end_ns"]}))
    covered = (seg["e"] - seg["s"]).groupby(seg["rank"]).sum()
    return pd.Series(covered.reindex(range(g.ngroups)).to_numpy(dtype="float64"),
                     index=pd.MultiIndex.from_frame(g.size().index.to_frame(index=False)))


def links(comms: pd.DataFrame) -> pd.DataFrame:
    """Point-to-point bandwidth per ordered pair: ``src``, ``dst``,
    ``messages``, ``bytes``, ``time_ns`` (and ``time_p50_ns``, the median
    message's), ``gbps`` (bytes / time_ns), ``gbps_p50`` (the median
    message's bandwidth), ``ratio`` and ``slow``
    (ratio below :data:`SLOW_LINK_RATIO`), slowest first.

    ``ratio`` is the pair's ``gbps_p50`` over the median ``gbps_p50`` of the
    pairs on *other* links (a link is an unordered pair: both directions of
    a slow link are slow, and in a chain of pipeline stages they can be half
    of all pairs, which would drag an all-pairs median down with them).  The
    median message, not the total, so that a few messages held up by the
    machine (a descheduled thread) do not make a link slow.  A pair can only
    be slow next to another link."""
    m = _comm.messages(comms)
    cols = ["src", "dst", "messages", "bytes", "time_ns", "time_p50_ns", "gbps", "gbps_p50",
            "ratio", "slow"]
    if m.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    out = m.groupby(["src", "dst"]).agg(messages=("bytes", "size"), bytes=("bytes", "sum"),
                                        time_ns=("time_ns", "sum"),
                                        time_p50_ns=("time_ns", "median"),
                                        gbps_p50=("gbps", "median")).reset_index()
    out["gbps"] = out["bytes"] / out["time_ns"]
    link = (np.minimum(out["src"], out["dst"]).astype("int64") * (1 << 32)
            + np.maximum(out["src"], out["dst"]).astype("int64")).to_numpy()
    vals = out["gbps_p50"].to_numpy()
    ref = np.full(len(out), np.nan)
    for lk in np.unique(link):  # a loop per link, not per message
        here = link == lk
        if (~here).any():
            ref[here] = np.median(vals[~here])
    out["ratio"] = vals / ref
    out["slow"] = (out["ratio"] < SLOW_LINK_RATIO).to_numpy()
    return out[cols].sort_values("ratio", kind="stable").reset_index(drop=True)


def groups(comms: pd.DataFrame) -> pd.DataFrame:
    """Per communication group and collective kind/size: ``ranks``
    (members), ``count``, ``busbw``, ``ratio`` (to the median over groups of
    the same kind and size) and ``slow``; only kinds run by 2+ groups can
    be slow."""
    coll = _comm.collectives(comms)
    cols = ["group", "kind", "bytes", "members", "count", "time_ns", "busbw", "ratio", "slow"]
    coll = coll[coll["busbw"].notna()]
    if coll.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    members = comms.groupby("group")["rank"].apply(lambda r: ",".join(map(str, sorted(set(r)))))
    g = coll.groupby(["group", "kind", "bytes"]).agg(
        count=("time_ns", "size"), time_ns=("time_ns", "sum"),
        bus=("busbw", "mean")).reset_index()
    g["busbw"] = g["bus"]
    med = g.groupby(["kind", "bytes"])["busbw"].transform("median")
    n = g.groupby(["kind", "bytes"])["group"].transform("size")
    g["ratio"] = g["busbw"] / med
    g["slow"] = (g["ratio"] < SLOW_LINK_RATIO) & (n >= 2)
    g["members"] = g["group"].map(members)
    return g[cols].sort_values("ratio", kind="stable").reset_index(drop=True)


def verdict(steps: pd.DataFrame, rk: pd.DataFrame) -> str:
    if steps.empty:
        return "no steps recorded"
    worst = rk.iloc[0] if len(rk) else None
    line = f"load-imbalance index {steps['imbalance'].mean():.1%} on average"
    if worst is not None and len(rk) > 1:
        line += (f"; rank {int(worst['rank'])} computes {fmt_ns(worst['excess_ns'])}/step "
                 f"more than the others' median")
    return line
