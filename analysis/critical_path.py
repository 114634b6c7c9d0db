"""The critical path of one step across ranks, through kernels and
collectives: the chain of work that set the step's length.

The walk starts at the end of the step on the rank that finished last and
goes back in time.  At time ``t`` on rank ``r`` the step was held by the
kernel of ``r`` that ended last at or before ``t`` (any stream); the time
between its end and ``t`` is a ``gap`` (host, synchronisation).  A
collective (or a receive) that waited for a peer is on the path only from
the moment its last participant arrived; the walk then continues on the
rank that arrived last, at its arrival: what delayed that rank delayed
everyone.  Otherwise the walk continues at the kernel's start, on the same
rank.  It stops at the start of the step window of the rank it is on.

The path's segments therefore tile ``[path start, step end)`` exactly.
The walk visits one kernel per iteration (a Python loop over the path's
kernels, each step a binary search), never over all events.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import comm as _comm
from msprof.analysis.comm import COMM_STREAM
from msprof.analysis.opstats import with_ops

_COLS = ["rank", "start_ns", "end_ns", "dur_ns", "kind", "op_id", "name"]


def pick_step(steps: pd.DataFrame) -> int | None:
    """A representative step: of the steps every rank ran, the one whose
    slowest rank is the median."""
    if steps.empty:
        return None
    n = steps["rank"].nunique()
    per = steps.groupby("step").agg(ranks=("rank", "nunique"), dur=("dur_ns", "max"))
    full = per[per["ranks"] == n] if (per["ranks"] == n).any() else per
    full = full.sort_values(["dur"], kind="stable")
    return int(full.index[(len(full) - 1) // 2])


def path(kernels: pd.DataFrame, ops: pd.DataFrame, comms: pd.DataFrame, steps: pd.DataFrame,
         step: int | None = None) -> pd.DataFrame:
    """The critical path of ``step`` (default :func:`pick_step`), in time
    order: one row per segment with ``rank``, ``start_ns``, ``end_ns``,
    ``dur_ns``, ``kind`` (``compute``, ``comm`` or ``gap``), ``op_id`` and
    operator ``name`` (-1 and "" for gaps)."""
    empty = pd.DataFrame({c: pd.Series(dtype="object" if c in ("kind", "name") else "int64")
                          for c in _COLS})
    if step is None:
        step = pick_step(steps)
    win = steps[steps["step"] == step]
    if step is None or win.empty:
        return empty
    w0 = dict(zip(win["rank"], win["start_ns"]))
    w1 = dict(zip(win["rank"], win["start_ns"] + win["dur_ns"]))
    lo, hi = min(w0.values()), max(w1.values())
    k = kernels[(kernels["dur_ns"] > 0) & (kernels["start_ns"] < hi)
                & (kernels["start_ns"] + kernels["dur_ns"] > lo) & kernels["rank"].isin(w0)]
    k = k[["rank", "op_id", "stream", "start_ns", "dur_ns"]].assign(
        end_ns=k["start_ns"] + k["dur_ns"]).sort_values(["rank", "end_ns", "stream"], kind="stable")
    k = _jumps(k, comms)
    by_rank = {int(r): (g["start_ns"].to_numpy(), g["end_ns"].to_numpy(), g["op_id"].to_numpy(),
                        g["stream"].to_numpy(), g["jump_rank"].to_numpy(), g["jump_ns"].to_numpy())
               for r, g in k.groupby("rank", sort=False)}
    r = int(win.loc[(win["start_ns"] + win["dur_ns"]).idxmax(), "rank"])
    t = int(w1[r])
    segs: list[tuple] = []
    for _ in range(len(k) + len(w0) + 2):
        start = int(w0[r])
        if t <= start:
            break
        arr = by_rank.get(r)
        i = -1 if arr is None else int(np.searchsorted(arr[1], t, side="right")) - 1
        if i < 0 or arr[1][i] <= start:
            segs.append((r, start, t, "gap", -1))
            break
        s, e, op, stream, jr, jt = (x[i] for x in arr)
        if e < t:
            segs.append((r, int(e), t, "gap", -1))
        kind = "comm" if stream == COMM_STREAM else "compute"
        if jr >= 0 and jr != r and jr in w0 and s < jt <= e:
            segs.append((r, int(jt), int(e), kind, int(op)))
            r, t = int(jr), int(jt)
            continue
        segs.append((r, int(max(s, start)), int(e), kind, int(op)))
        t = int(s)
    if not segs:
        return empty
    out = pd.DataFrame(segs[::-1], columns=["rank", "start_ns", "end_ns", "kind", "op_id"])
    out["dur_ns"] = out["end_ns"] - out["start_ns"]
    named = with_ops(out[out["op_id"] >= 0][["rank", "op_id"]].assign(dur_ns=0), ops)
    out["name"] = ""
    out.loc[out["op_id"] >= 0, "name"] = named["name"].to_numpy()
    out = out[_COLS]
    out.attrs["step"] = int(step)
    return out


def _jumps(k: pd.DataFrame, comms: pd.DataFrame) -> pd.DataFrame:
    """Gives each communication kernel the (rank, time) it waited for:
    ``jump_rank``/``jump_ns`` (-1 when it did not wait)."""
    k = k.assign(jump_rank=-1, jump_ns=-1)
    if comms is None or comms.empty:
        return k
    w = _comm.waits(comms)
    if w.empty:
        return k
    ck = k[k["stream"] == COMM_STREAM].reset_index().sort_values("start_ns", kind="stable")
    w = w.sort_values("start_ns", kind="stable")
    m = pd.merge_asof(w[["rank", "start_ns", "end_ns", "waited_for"]].rename(
        columns={"start_ns": "w_start", "end_ns": "w_end"}), ck[["index", "rank", "start_ns", "end_ns"]],
        left_on="w_start", right_on="start_ns", by="rank", direction="backward")
    m = m[m["index"].notna() & (m["w_start"] < m["end_ns"])]
    idx = m["index"].astype("int64").to_numpy()
    k.loc[idx, "jump_rank"] = m["waited_for"].to_numpy()
    k.loc[idx, "jump_ns"] = m["w_end"].to_numpy()
    return k


def summary(p: pd.DataFrame) -> pd.DataFrame:
    """The path's breakdown: time per ``kind`` and ``rank`` with its
    ``share`` of the path, largest first."""
    if p.empty:
        return pd.DataFrame({"kind": [], "rank": [], "dur_ns": [], "share": []})
    g = p.groupby(["kind", "rank"])["dur_ns"].sum().reset_index()
    g["share"] = g["dur_ns"] / p["dur_ns"].sum()
    return g.sort_values("dur_ns", ascending=False, kind="stable").reset_index(drop=True)


def top_ops(p: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Operators on the path by time on it: ``name``, ``kind``, ``segments``,
    ``dur_ns``, ``share``."""
    q = p[p["op_id"] >= 0]
    if q.empty:
        return pd.DataFrame({"name": [], "kind": [], "segments": [], "dur_ns": [], "share": []})
    g = q.groupby(["name", "kind"]).agg(segments=("dur_ns", "size"), dur_ns=("dur_ns", "sum"))
    g = g.reset_index()
    g["share"] = g["dur_ns"] / p["dur_ns"].sum()
    return g.sort_values("dur_ns", ascending=False, kind="stable").head(n).reset_index(drop=True)


def verdict(p: pd.DataFrame) -> str:
    if p.empty:
        return "no step to follow"
    total = p["dur_ns"].sum()
    parts = p.groupby("kind")["dur_ns"].sum() / total
    ranks = sorted(p["rank"].unique())
    text = ", ".join(f"{k} {v:.0%}" for k, v in parts.sort_values(ascending=False).items())
    return f"critical path {total / 1e3:,.1f} us over rank(s) {','.join(map(str, ranks))}: {text}"
