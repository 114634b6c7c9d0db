"""Vectorised interval arithmetic shared by the analyses: attributing
intervals (kernels, collectives) to the step windows they overlap, and
merging overlapping intervals into their union, per group."""
from __future__ import annotations

import numpy as np
import pandas as pd


def windows(steps: pd.DataFrame) -> pd.DataFrame:
    """Step windows ``[win_start, win_end)`` per rank, sorted for joining."""
    w = steps[["rank", "step", "start_ns", "dur_ns"]].rename(
        columns={"step": "win_step", "start_ns": "win_start", "dur_ns": "win_ns"}
    )
    w = w.assign(win_end=w["win_start"] + w["win_ns"])
    return w.sort_values("win_start", kind="stable").reset_index(drop=True)


def clip_to_windows(iv: pd.DataFrame, win: pd.DataFrame) -> pd.DataFrame:
    """Cuts intervals ``[start_ns, end_ns)`` (columns of ``iv``, plus ``rank``)
    to the step windows of their rank.

    An interval is matched with the window holding its start and the window
    holding its end (two pieces when it crosses a step boundary; one that
    spans three or more steps loses its middle).  "Holding" means the
    latest window of the rank starting at or before the time.  Returns one
    row per non-empty piece with ``iv``'s columns, the window's columns and
    the clipped ``s``, ``e``.  Binary searches per rank (a loop over ranks).
    """
    cols = list(iv.columns)
    wcols = ("win_step", "win_start", "win_ns", "win_end")
    if iv.empty or win.empty:
        empty = iv.iloc[0:0].copy()
        for c in wcols + ("s", "e"):
            empty[c] = pd.Series(dtype="int64")
        return empty
    ranks = iv["rank"].to_numpy()
    starts, ends = iv["start_ns"].to_numpy(), iv["end_ns"].to_numpy()
    first = np.full(len(iv), -1, dtype="int64")
    last = np.full(len(iv), -1, dtype="int64")
    w = win.sort_values(["rank", "win_start"], kind="stable").reset_index(drop=True)
    wr, ws = w["rank"].to_numpy(), w["win_start"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, wr[1:] != wr[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = np.flatnonzero(ranks == wr[a])
        if not len(sel):
            continue
        i = np.searchsorted(ws[a:b], starts[sel], side="right") - 1
        j = np.searchsorted(ws[a:b], ends[sel] - 1, side="right") - 1
        first[sel] = np.where(i >= 0, i + a, -1)
        last[sel] = np.where(j >= 0, j + a, -1)
    rows = np.concatenate([np.flatnonzero(first >= 0), np.flatnonzero((last >= 0) & (last != first))])
    widx = np.concatenate([first[first >= 0], last[(last >= 0) & (last != first)]])
    pieces = iv.iloc[rows].reset_index(drop=True)
    for c in wcols:
        pieces[c] = w[c].to_numpy()[widx].astype("int64")
    s = np.maximum(pieces["start_ns"].to_numpy(), pieces["win_start"].to_numpy())
    e = np.minimum(pieces["end_ns"].to_numpy(), pieces["win_end"].to_numpy())
    pieces["s"], pieces["e"] = s, e
    return pieces[pieces["e"] > pieces["s"]][cols + list(wcols) + ["s", "e"]].reset_index(drop=True)


def union(pieces: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """Merges overlapping ``[s, e)`` intervals within each ``keys`` group.

    Returns ``(sorted, seg)``: the pieces sorted by group then ``s``, and for
    each of their rows the id of the merged segment it belongs to (segments
    are numbered in that order; touching intervals merge).
    """
    p = pieces.sort_values(keys + ["s"], kind="stable").reset_index(drop=True)
    gk = p.groupby(keys, sort=False).ngroup()
    reach = p["e"].groupby(gk).cummax()
    before = reach.groupby(gk).shift()
    new = before.isna() | (p["s"] > before)
    return p, new.cumsum() - 1


def covered(segs: pd.DataFrame, q: pd.DataFrame) -> np.ndarray:
    """For each query ``[a, b)`` of ``q`` (columns ``rank``, ``a``, ``b``),
    how much of it lies inside the segments of its rank (``segs``: columns
    ``rank``, ``s``, ``e``; disjoint, as :func:`union` merges them).  A loop
    per rank; each rank's queries are answered with a binary search over a
    prefix sum of its segment lengths."""
    out = np.zeros(len(q), dtype="int64")
    if q.empty or segs.empty:
        return out
    qr = q["rank"].to_numpy()
    qa, qb = q["a"].to_numpy(), q["b"].to_numpy()
    for rank, sg in segs.groupby("rank", sort=False):
        sel = np.flatnonzero(qr == rank)
        if not len(sel):
            continue
        sg = sg.sort_values("s", kind="stable")
        s, e = sg["s"].to_numpy(), sg["e"].to_numpy()
        before = np.concatenate([[0], np.cumsum(e - s)])

        def upto(t):
            i = np.searchsorted(s, t, side="right") - 1
            ok = i >= 0
            ic = np.where(ok, i, 0)
            part = np.clip(np.minimum(t, e[ic]) - s[ic], 0, None)
            return np.where(ok, before[ic] + part, 0)

        out[sel] = upto(qb[sel]) - upto(qa[sel])
    return out


def segments(iv: pd.DataFrame) -> pd.DataFrame:
    """The union of intervals ``[start_ns, end_ns)`` per rank, as disjoint
    segments with columns ``rank``, ``s``, ``e``."""
    if iv.empty:
        return pd.DataFrame({"rank": pd.Series(dtype="int64"), "s": pd.Series(dtype="int64"),
                             "e": pd.Series(dtype="int64")})
    p, seg = union(pd.DataFrame({"rank": iv["rank"].to_numpy(), "s": iv["start_ns"].to_numpy(),
                                 "e": iv["end_ns"].to_numpy()}), ["rank"])
    return p.groupby(seg).agg(rank=("rank", "first"), s=("s", "first"), e=("e", "max"))
