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

import pandas as pd

from msprof.analysis import comm as _comm

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
    """Per rank: ``compute_ns`` (mean per step), ``excess_ns`` (over the
    median of the other ranks), ``wait_ns`` (its own mean wait in
    collectives per step) and ``caused_wait_ns`` (per step, the mean wait
    of each other rank in collectives this rank arrived last at), sorted
    by excess, largest first."""
    cols = ["rank", "compute_ns", "excess_ns", "wait_ns", "caused_wait_ns"]
    if step_df.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    g = step_df.groupby("rank")
    out = pd.DataFrame({"compute_ns": g["compute_ns"].mean(), "wait_ns": g["comm_wait_ns"].mean(),
                        "steps": g.size()})
    vals = out["compute_ns"].to_numpy()
    others = [pd.Series(vals[[j for j in range(len(vals)) if j != i]]).median()
              for i in range(len(vals))]  # a loop per rank, not per event
    out["excess_ns"] = (out["compute_ns"] - pd.Series(others, index=out.index)).fillna(0)
    w = _comm.waits(comms) if comms is not None and not comms.empty else None
    if w is not None and not w.empty:
        w = w[~w["p2p"]]
        caused = w.groupby("waited_for")["wait_ns"].sum()
        n_other = max(len(out) - 1, 1)
        out["caused_wait_ns"] = (out.index.map(caused).fillna(0).to_numpy()
                                 / out["steps"].clip(lower=1) / n_other)
    else:
        out["caused_wait_ns"] = 0.0
    out.index.name = "rank"
    return out.reset_index()[cols].sort_values("excess_ns", ascending=False,
                                                kind="stable").reset_index(drop=True)


def links(comms: pd.DataFrame) -> pd.DataFrame:
    """Point-to-point bandwidth per ordered pair: ``src``, ``dst``,
    ``messages``, ``bytes``, ``time_ns``, ``gbps``, ``ratio`` (to the median
    pair's gbps) and ``slow`` (ratio below :data:`SLOW_LINK_RATIO`), slowest
    first."""
    m = _comm.messages(comms)
    cols = ["src", "dst", "messages", "bytes", "time_ns", "gbps", "ratio", "slow"]
    if m.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    out = m.groupby(["src", "dst"]).agg(messages=("bytes", "size"), bytes=("bytes", "sum"),
                                        time_ns=("time_ns", "sum")).reset_index()
    out["gbps"] = out["bytes"] / out["time_ns"]
    out["ratio"] = out["gbps"] / out["gbps"].median()
    out["slow"] = (out["ratio"] < SLOW_LINK_RATIO) & (len(out) >= 3)
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
        line += (f"; rank {int(worst['rank'])} computes {worst['excess_ns'] / 1e3:,.1f} us/step "
                 f"more than the others' median")
    return line
