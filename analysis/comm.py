"""Communication: collectives matched across ranks, their bandwidth and skew,
point-to-point messages, the rank x rank communication matrix, and the
time each rank spent waiting for its peers.

Matching follows docs/FORMAT.md: the same collective carries the same
``(group, kind, seq)`` on every rank of its group; a message carries the
same ``(group, seq)`` at its sender (``send``, ``peer`` = receiver) and its
receiver (``recv``, ``peer`` = sender).

Bandwidths are the nccl-tests definitions, in GB/s (1 byte/ns = 1 GB/s):

``algbw``  bytes / time, with ``bytes`` as the collective reports it (the
           buffer for allreduce/broadcast, the whole gathered or scattered
           buffer for allgather/reduce-scatter, the message for send/recv)
``busbw``  algbw x a factor that makes the numbers comparable with the
           link speed: 2(n-1)/n for allreduce, (n-1)/n for allgather and
           reduce-scatter, 1 for broadcast and send/recv (n = ranks of the
           group)

The ``time`` of one collective instance runs from its *last* arrival (the
moment every rank of the group had entered it) to its last exit: the time
the transfer itself took.  Time before the last arrival is ``wait``: a rank
that arrived early waited for the slowest one (``skew`` = last arrival -
first arrival).  A receive waits until its sender starts sending; a
blocking send until its receiver has posted the receive.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import memo
from msprof.analysis.intervals import covered, rank_start_order, sorted_segments

COMM_STREAM = 1                 # docs/FORMAT.md: compute on 0, communication on 1
P2P = ("send", "recv")
NO_BW = ("barrier",)


def bus_factor(kind: pd.Series, n: pd.Series) -> pd.Series:
    """The nccl-tests bus-bandwidth factor of each collective."""
    n = n.astype("float64")
    ring = ((n - 1) / n).where(n > 0, 0.0)
    f = pd.Series(1.0, index=kind.index)
    f = f.mask(kind == "allreduce", 2 * ring)
    f = f.mask(kind.isin(["allgather", "reduce_scatter"]), ring)
    return f


def _select(df: pd.DataFrame, rank: int | None) -> pd.DataFrame:
    return df if rank is None else df[df["rank"] == rank]


def _with_end(comms: pd.DataFrame) -> pd.DataFrame:
    return comms.assign(end_ns=comms["start_ns"] + comms["dur_ns"])


def group_sizes(comms: pd.DataFrame) -> pd.Series:
    """Ranks per communication group (those seen in its collectives)."""
    coll = comms[~comms["kind"].isin(P2P)]
    return coll.groupby("group")["rank"].nunique()


_COLL_COLS = {"group": "int64", "kind": "object", "seq": "int64", "step": "int64",
              "ranks": "int64", "bytes": "int64", "first_ns": "int64", "last_ns": "int64",
              "end_ns": "int64", "skew_ns": "int64", "time_ns": "int64", "dur_ns": "float64",
              "last_rank": "int64", "algbw": "float64", "busbw": "float64"}


def collectives(comms: pd.DataFrame) -> pd.DataFrame:
    """One row per collective instance (``group``, ``kind``, ``seq``):
    ``ranks`` that took part, ``bytes``, ``first_ns``/``last_ns`` (first and
    last arrival), ``end_ns`` (last exit), ``skew_ns``, ``time_ns`` (last
    arrival to last exit), ``dur_ns`` (mean per-rank duration, as measured),
    ``last_rank`` (the rank that arrived last), ``algbw``, ``busbw``."""
    return memo.once("collectives", (comms,), lambda: _collectives(comms)).copy(deep=False)


def _collectives(comms: pd.DataFrame) -> pd.DataFrame:
    c = _with_end(comms[~comms["kind"].isin(P2P)])
    if c.empty:
        return pd.DataFrame({k: pd.Series(dtype=t) for k, t in _COLL_COLS.items()})
    keys = ["group", "kind", "seq"]
    c = c.sort_values(keys + ["start_ns"], kind="stable")
    g = c.groupby(keys, sort=False)
    out = g.agg(step=("step", "max"), ranks=("rank", "nunique"), bytes=("bytes", "max"),
                first_ns=("start_ns", "min"), last_ns=("start_ns", "max"),
                end_ns=("end_ns", "max"), dur_ns=("dur_ns", "mean"),
                last_rank=("rank", "last"))
    out = out.reset_index()
    out["skew_ns"] = out["last_ns"] - out["first_ns"]
    out["time_ns"] = (out["end_ns"] - out["last_ns"]).clip(lower=1)
    n = out["group"].map(group_sizes(comms)).fillna(out["ranks"])
    out["algbw"] = (out["bytes"] / out["time_ns"]).where(~out["kind"].isin(NO_BW))
    out["busbw"] = out["algbw"] * bus_factor(out["kind"], n)
    return out[list(_COLL_COLS)].astype(_COLL_COLS)


_P2P_COLS = {"group": "int64", "seq": "int64", "src": "int64", "dst": "int64",
             "step": "int64", "bytes": "int64", "send_ns": "int64", "recv_ns": "int64",
             "end_ns": "int64", "time_ns": "int64", "gbps": "float64"}


def messages(comms: pd.DataFrame) -> pd.DataFrame:
    """Point-to-point messages, one row per send matched with its receive:
    ``src``, ``dst``, ``bytes``, ``send_ns``/``recv_ns`` (when each side
    entered), ``end_ns`` (last side done), ``time_ns`` (from the later
    arrival to the end: the transfer) and ``gbps`` (bytes / time_ns).  A
    side whose partner was not recorded is left out."""
    return memo.once("messages", (comms,), lambda: _messages(comms)).copy(deep=False)


def _messages(comms: pd.DataFrame) -> pd.DataFrame:
    c = _with_end(comms)
    s = c[c["kind"] == "send"].rename(columns={"rank": "src", "peer": "dst"})
    r = c[c["kind"] == "recv"].rename(columns={"rank": "dst", "peer": "src"})
    m = s[["group", "seq", "src", "dst", "step", "bytes", "start_ns", "end_ns"]].merge(
        r[["group", "seq", "src", "dst", "start_ns", "end_ns"]],
        on=["group", "seq", "src", "dst"], suffixes=("_s", "_r"))
    if m.empty:
        return pd.DataFrame({k: pd.Series(dtype=t) for k, t in _P2P_COLS.items()})
    out = m.rename(columns={"start_ns_s": "send_ns", "start_ns_r": "recv_ns"})
    out["end_ns"] = np.maximum(out["end_ns_s"], out["end_ns_r"])
    out["time_ns"] = (out["end_ns"] - np.maximum(out["send_ns"], out["recv_ns"])).clip(lower=1)
    out["gbps"] = out["bytes"] / out["time_ns"]
    return out[list(_P2P_COLS)].astype(_P2P_COLS).sort_values(
        ["send_ns", "src", "dst"], kind="stable").reset_index(drop=True)


def waits(comms: pd.DataFrame) -> pd.DataFrame:
    """Per recorded collective or message side, the stretch it waited for a
    peer: ``rank``, ``start_ns``, ``end_ns`` (clipped to the side's own
    end), ``wait_ns``, ``p2p`` (a send/recv: pipeline bubble material),
    ``kind``, ``seq`` and ``waited_for`` (the last-arriving rank, or the
    peer).  Sides that did not wait are left out."""
    return memo.once("waits", (comms,), lambda: _waits(comms)).copy(deep=False)


def _waits(comms: pd.DataFrame) -> pd.DataFrame:
    c = _with_end(comms)
    parts = []
    coll = collectives(comms)
    cc = c[~c["kind"].isin(P2P)].merge(coll[["group", "kind", "seq", "last_ns", "last_rank"]],
                                       on=["group", "kind", "seq"])
    parts.append(pd.DataFrame({"rank": cc["rank"], "start_ns": cc["start_ns"],
                               "end_ns": np.minimum(cc["last_ns"], cc["end_ns"]), "p2p": False,
                               "kind": cc["kind"], "seq": cc["seq"],
                               "waited_for": cc["last_rank"]}))
    pp = c[c["kind"].isin(P2P)]
    if not pp.empty:
        other = pp[["rank", "peer", "group", "seq", "kind", "start_ns"]].rename(
            columns={"rank": "peer", "peer": "rank", "start_ns": "peer_start"})
        other["kind"] = other["kind"].map({"send": "recv", "recv": "send"})
        pm = pp.merge(other, on=["rank", "peer", "group", "seq", "kind"])
        parts.append(pd.DataFrame({"rank": pm["rank"], "start_ns": pm["start_ns"],
                                   "end_ns": np.minimum(pm["peer_start"], pm["end_ns"]),
                                   "p2p": True, "kind": pm["kind"], "seq": pm["seq"],
                                   "waited_for": pm["peer"]}))
    w = pd.concat(parts, ignore_index=True)
    w["wait_ns"] = w["end_ns"] - w["start_ns"]
    w = w[w["wait_ns"] > 0]
    return w.astype({"rank": "int32", "start_ns": "int64", "end_ns": "int64", "p2p": bool,
                     "seq": "int64", "waited_for": "int64", "wait_ns": "int64"}
                    ).reset_index(drop=True)


def collective_stats(comms: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """Per collective ``kind`` and ``bytes`` (send/recv included): ``count``
    (instances), ``ranks``, ``time_ns`` (mean transfer time per instance),
    ``dur_ns`` (mean measured duration per rank, waits included),
    ``wait_ns`` (mean wait per rank and instance), ``skew_ns`` (mean and
    ``skew_max_ns``), ``algbw`` and ``busbw`` (total bytes over total
    transfer time, GB/s), ``total_ns`` (sum of per-rank durations)."""
    c = _select(comms, rank)
    coll = collectives(comms)
    if rank is not None:
        coll = coll.merge(c[["group", "kind", "seq"]].drop_duplicates(), on=["group", "kind", "seq"])
    msg = messages(comms)
    if rank is not None:
        msg = msg[(msg["src"] == rank) | (msg["dst"] == rank)]
    inst = pd.concat([
        coll[["kind", "bytes", "ranks", "time_ns", "skew_ns", "busbw", "algbw"]],
        msg.assign(kind="send/recv", ranks=2, skew_ns=(msg["send_ns"] - msg["recv_ns"]).abs(),
                   algbw=msg["gbps"], busbw=msg["gbps"])[
            ["kind", "bytes", "ranks", "time_ns", "skew_ns", "busbw", "algbw"]],
    ], ignore_index=True)
    cols = ["kind", "bytes", "count", "ranks", "time_ns", "dur_ns", "wait_ns", "skew_ns",
            "skew_max_ns", "algbw", "busbw", "total_ns"]
    if inst.empty:
        return pd.DataFrame({k: pd.Series(dtype="float64") for k in cols})
    inst["factor"] = (inst["busbw"] / inst["algbw"]).fillna(0)
    g = inst.groupby(["kind", "bytes"], sort=False)
    out = g.agg(count=("time_ns", "size"), ranks=("ranks", "max"), time_sum=("time_ns", "sum"),
                skew_ns=("skew_ns", "mean"), skew_max_ns=("skew_ns", "max"),
                factor=("factor", "mean")).reset_index()
    out["time_ns"] = out["time_sum"] / out["count"]
    out["algbw"] = (out["bytes"] * out["count"] / out["time_sum"]).where(
        ~out["kind"].isin(NO_BW))
    out["busbw"] = out["algbw"] * out["factor"]
    side = c.assign(kind=c["kind"].where(~c["kind"].isin(P2P), "send/recv"))
    per_rank = side.groupby(["kind", "bytes"]).agg(dur_ns=("dur_ns", "mean"),
                                                   total_ns=("dur_ns", "sum"))
    w = waits(comms)
    w = _select(w, rank).assign(kind=lambda d: d["kind"].where(~d["kind"].isin(P2P), "send/recv"))
    wsum = w.merge(side[["rank", "kind", "seq", "bytes"]].drop_duplicates(["rank", "kind", "seq"]),
                   on=["rank", "kind", "seq"]).groupby(["kind", "bytes"])["wait_ns"].sum()
    out = out.join(per_rank, on=["kind", "bytes"])
    sides = side.groupby(["kind", "bytes"]).size()
    out["wait_ns"] = (out.set_index(["kind", "bytes"]).index.map(wsum).fillna(0).to_numpy()
                      / out.set_index(["kind", "bytes"]).index.map(sides).to_numpy())
    return out[cols].sort_values("total_ns", ascending=False, kind="stable").reset_index(drop=True)


def matrix(comms: pd.DataFrame) -> pd.DataFrame:
    """The communication matrix, one row per ordered pair of ranks that
    exchanged data: ``src``, ``dst``, ``bytes``, ``time_ns`` (transfer time
    of the exchanges), ``gbps`` (bytes / time) and ``p2p_bytes`` (the part
    from send/recv).

    Messages count from sender to receiver.  A collective's traffic is
    modelled as spread evenly over its group: each rank sends
    ``bytes x busbw factor / (n - 1)`` to every other rank during the
    instance's transfer time (the ring and tree algorithms move that much
    per rank; which link carries what depends on the algorithm, which the
    profile does not record)."""
    msg = messages(comms)
    pair = msg[["src", "dst", "bytes", "time_ns"]].assign(p2p_bytes=msg["bytes"])
    c = comms[~comms["kind"].isin(P2P + NO_BW)]
    coll = collectives(comms)
    if not coll.empty:
        members = c[["group", "kind", "seq", "rank"]].drop_duplicates()
        inst = coll[coll["ranks"] > 1]
        n = inst["ranks"].astype("float64")
        per_peer = inst["bytes"] * bus_factor(inst["kind"], n) * n / (n - 1) / n
        inst = inst.assign(per_peer=per_peer)[["group", "kind", "seq", "per_peer", "time_ns"]]
        a = members.merge(inst, on=["group", "kind", "seq"])
        ab = a.merge(members, on=["group", "kind", "seq"], suffixes=("", "_dst"))
        ab = ab[ab["rank"] != ab["rank_dst"]]
        pair = pd.concat([pair, pd.DataFrame({
            "src": ab["rank"], "dst": ab["rank_dst"], "bytes": ab["per_peer"],
            "time_ns": ab["time_ns"], "p2p_bytes": 0})], ignore_index=True)
    cols = ["src", "dst", "bytes", "time_ns", "gbps", "p2p_bytes"]
    if pair.empty:
        return pd.DataFrame({k: pd.Series(dtype="float64") for k in cols})
    out = pair.groupby(["src", "dst"]).sum().reset_index()
    out["gbps"] = out["bytes"] / out["time_ns"]
    out["bytes"] = out["bytes"].round().astype("int64")
    out["p2p_bytes"] = out["p2p_bytes"].astype("int64")
    return out[cols]


def overlap(step_df: pd.DataFrame) -> pd.DataFrame:
    """Per rank, from :func:`msprof.analysis.breakdown.step_breakdown`:
    communication time per step (``comm_ns``), the part overlapped with
    compute and the exposed part, and ``overlap_ratio`` = overlapped /
    communication (NaN without communication)."""
    g = step_df.groupby("rank")
    out = g[["comm_ns", "overlapped_comm_ns", "exposed_comm_ns", "comm_wait_ns",
             "bubble_ns", "compute_ns"]].mean()
    out["overlap_ratio"] = (out["overlapped_comm_ns"] / out["comm_ns"]).where(out["comm_ns"] > 0)
    return out.reset_index()


def verdict(stats: pd.DataFrame, ov: pd.DataFrame) -> str:
    """One line: how much communication there is and how well it hides."""
    if stats.empty:
        return "no communication recorded"
    comm, over = ov["comm_ns"].sum(), ov["overlapped_comm_ns"].sum()
    ratio = over / comm if comm else float("nan")
    best = stats.loc[stats["busbw"].idxmax()] if stats["busbw"].notna().any() else None
    bw = f"; best bus bandwidth {best['busbw']:.3g} GB/s ({best['kind']})" if best is not None else ""
    return f"{ratio:.0%} of communication time overlapped with compute{bw}"


def compute_segments(kernels: pd.DataFrame) -> pd.DataFrame:
    """The union of each rank's compute kernels (every stream but
    :data:`COMM_STREAM`) as segments ``rank``, ``s``, ``e``.  Kept per
    profile table (callers must not modify it)."""
    return memo.once("compute_segments", (kernels,), lambda: _compute_segments(kernels))


def _compute_segments(kernels: pd.DataFrame) -> pd.DataFrame:
    order = rank_start_order(kernels)
    rows = order[(kernels["stream"].to_numpy() != COMM_STREAM)[order]]   # still sorted
    start = kernels["start_ns"].to_numpy(dtype="int64")[rows]
    end = start + kernels["dur_ns"].to_numpy(dtype="int64")[rows]
    return sorted_segments(kernels["rank"].to_numpy()[rows], start, end)


def _exposure(kernels: pd.DataFrame, comms: pd.DataFrame | None) -> pd.DataFrame | None:
    """The communication kernels with ``exposed_ns`` (no compute running)
    and ``wait_ns`` (the exposed part spent waiting for peers), or None
    without any."""
    ck = kernels[kernels["stream"] == COMM_STREAM]
    if ck.empty:
        return None
    segs = compute_segments(kernels)
    end = ck["start_ns"] + ck["dur_ns"]
    hidden = covered(segs, pd.DataFrame({"rank": ck["rank"], "a": ck["start_ns"], "b": end}))
    k = ck[["rank", "op_id", "start_ns", "dur_ns"]].assign(exposed_ns=ck["dur_ns"].to_numpy() - hidden,
                                                         end_ns=end.to_numpy())
    k = k.reset_index(drop=True)
    k["wait_ns"] = 0
    w = waits(comms) if comms is not None and not comms.empty else None
    if w is not None and not w.empty:
        wh = w["wait_ns"].to_numpy() - covered(
            segs, pd.DataFrame({"rank": w["rank"], "a": w["start_ns"], "b": w["end_ns"]}))
        w = w.assign(wexp=wh).sort_values("start_ns", kind="stable")
        ks = k.reset_index().sort_values("start_ns", kind="stable")
        m = pd.merge_asof(w[["rank", "start_ns", "wexp"]].rename(columns={"start_ns": "ws"}),
                          ks[["index", "rank", "start_ns", "end_ns"]], left_on="ws",
                          right_on="start_ns", by="rank", direction="backward")
        m = m[m["index"].notna() & (m["ws"] < m["end_ns"])]
        add = m.groupby(m["index"].astype("int64"))["wexp"].sum()
        k.loc[add.index, "wait_ns"] = add.to_numpy()
    k["wait_ns"] = np.minimum(k["wait_ns"], k["exposed_ns"])
    return k


def by_op(kernels: pd.DataFrame, ops: pd.DataFrame, comms: pd.DataFrame,
          steps: pd.DataFrame, per_rank: bool = False) -> pd.DataFrame:
    """Per communication operator (kernels on :data:`COMM_STREAM`, e.g. one
    gradient bucket's allreduce): ``calls``, ``ranks``, ``dur_ns``,
    ``exposed_ns`` (time with no compute kernel running), ``wait_ns`` (the
    exposed part spent waiting for peers) and ``transfer_ns`` (exposed -
    wait: what perfect overlap would hide), each per step (mean over the
    rank-steps of the ranks that ran it; per rank, with a ``rank`` column,
    when ``per_rank``); largest transfer first."""
    from msprof.analysis.opstats import with_ops

    cols = ["name", "type", "calls", "ranks", "dur_ns", "exposed_ns", "wait_ns", "transfer_ns"]
    k = memo.once("exposure", (kernels, comms), lambda: _exposure(kernels, comms))
    if k is None:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    k = with_ops(k, ops)
    keys = ["name", "type"] + (["rank"] if per_rank else [])
    g = k.groupby(keys, sort=False)
    out = g.agg(calls=("dur_ns", "size"), ranks=("rank", "nunique"), dur_ns=("dur_ns", "sum"),
                exposed_ns=("exposed_ns", "sum"), wait_ns=("wait_ns", "sum"))
    per_rank_steps = steps.groupby("rank").size()
    if per_rank:
        n = out.index.get_level_values("rank").map(per_rank_steps).fillna(0).to_numpy()
        n = pd.Series(np.maximum(n, 1), index=out.index)
    else:
        ranks_of = g["rank"].unique()  # one row per operator
        n = ranks_of.map(lambda rs: max(int(per_rank_steps.reindex(rs).fillna(0).sum()), 1))
    out = out.div(n.astype("float64"), axis=0).assign(calls=out["calls"], ranks=out["ranks"])
    out["transfer_ns"] = out["exposed_ns"] - out["wait_ns"]
    cols = cols[:2] + (["rank"] if per_rank else []) + cols[2:]
    return out.reset_index()[cols].sort_values("transfer_ns", ascending=False,
                                               kind="stable").reset_index(drop=True)
