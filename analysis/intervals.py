"""Vectorised interval arithmetic shared by the analyses: placing intervals
(kernels, collectives, waits) in the step windows of their rank, and
merging overlapping intervals into their union.

The step windows of all ranks are laid end to end on one number line
(:class:`Windows`): window ``i`` occupies ``[off[i], off[i] + ns[i]]``, with a
gap of at least 1 between windows.  A piece of an interval cut to its
window maps onto that line by a shift, so a single sort, a single running
maximum (the union) or a single running minimum covers every window of
every rank at once: the windows' ranges are disjoint and in order, so the
running values restart by themselves at each window, with no per-group
loop and no pandas ``groupby``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import memo

CHUNK = 1 << 20   # rows per pass over a big table: bounds the temporaries


def _i64(df: pd.DataFrame, col: str) -> np.ndarray:
    return df[col].to_numpy(dtype="int64")


class Timeline:
    """Points ``(rank, t)`` sorted by rank then time (ties keep their
    order): ``order`` (their positions as given), ``rank``, ``t``."""

    def __init__(self, rank, t):
        rank, t = np.asarray(rank, dtype="int64"), np.asarray(t, dtype="int64")
        dr = np.diff(rank)
        if (dr >= 0).all() and ((dr > 0) | (np.diff(t) >= 0)).all():
            self.order = np.arange(len(t))      # sorted already (tables often are)
            self.rank, self.t = rank, t
        else:
            self.order = np.lexsort((t, rank))
            self.rank, self.t = rank[self.order], t[self.order]
        first = np.flatnonzero(np.r_[True, self.rank[1:] != self.rank[:-1]]) if len(t) else \
            np.zeros(0, dtype=np.intp)
        self.ranks = self.rank[first]
        self.bounds = np.append(first, len(self.rank))    # rank j: [bounds[j], bounds[j+1])

    def __len__(self) -> int:
        return len(self.rank)

    def latest(self, rank, t, by_rank: bool = False) -> np.ndarray:
        """For each query ``(rank, t)``: the position (in sorted order) of
        the latest point of the same rank at or before ``t``, -1 when none.
        ``by_rank``: the queries are sorted by rank (a binary search per
        rank's slice); otherwise they are answered :data:`CHUNK` at a time."""
        t = np.asarray(t)
        rank = np.asarray(rank)
        out = np.full(len(t), -1, dtype="int64")
        if not len(t) or not len(self):
            return out
        if not by_rank:
            tmin, tmax = int(self.t.min()), int(self.t.max())
            span = tmax - tmin + 2
            if span * len(self.ranks) >= 2**62:   # no room for one key: sort the queries
                order = np.argsort(rank, kind="stable")
                out[order] = self.latest(rank[order], t[order], by_rank=True)
                return out
            # One key per point, rank first, then time (shifted past 0: a
            # query before the rank's first point lands before it).
            key = np.searchsorted(self.ranks, self.rank) * span + (self.t - tmin + 1)
            for a in range(0, len(t), CHUNK):
                r, q = rank[a:a + CHUNK], np.clip(t[a:a + CHUNK], tmin - 1, tmax)
                code = np.minimum(np.searchsorted(self.ranks, r), len(self.ranks) - 1)
                q -= tmin - 1
                q += code * span
                i = np.searchsorted(key, q, side="right") - 1
                ok = (self.ranks[code] == r) & (i >= self.bounds[code])
                out[a:a + CHUNK] = np.where(ok, i, -1)
            return out
        lo = np.searchsorted(rank, self.ranks, side="left")
        hi = np.searchsorted(rank, self.ranks, side="right")
        for j in np.flatnonzero(hi > lo):
            a, b = self.bounds[j], self.bounds[j + 1]
            i = np.searchsorted(self.t[a:b], t[lo[j]:hi[j]], side="right") - 1
            out[lo[j]:hi[j]] = np.where(i >= 0, i + a, -1)
        return out


class Windows(Timeline):
    """The step windows of ``steps``, sorted by rank then start (ties keep
    the table's order): ``order`` (rows of ``steps``), ``rank``, ``step``,
    ``start``, ``ns``, ``end`` and ``off`` (where each window starts on the
    shared line), as arrays."""

    def __init__(self, steps: pd.DataFrame):
        super().__init__(_i64(steps, "rank"), _i64(steps, "start_ns"))
        self.start = self.t
        self.step = _i64(steps, "step")[self.order]
        self.ns = _i64(steps, "dur_ns")[self.order]
        self.end = self.start + self.ns
        width = np.maximum(self.ns, 0) + 1
        self.off = (np.cumsum(width) - width).astype("int64")
        # The start of the next window of the same rank (int64 max after the last).
        self.next = np.full(len(self), np.iinfo("int64").max)
        self.next[:-1] = np.where(self.rank[1:] == self.rank[:-1], self.start[1:], self.next[:-1])

    def holding(self, rank, t, by_rank: bool = False) -> np.ndarray:
        """For each time ``t`` of rank ``rank``: the window holding it, i.e.
        the latest window of that rank starting at or before ``t`` (-1 when
        none)."""
        return self.latest(rank, t, by_rank)

    def shift(self, w: np.ndarray) -> np.ndarray:
        """What to add to a time in window ``w`` to put it on the line."""
        return self.off[w] - self.start[w]


def rank_start_order(kernels: pd.DataFrame) -> np.ndarray:
    """The rows of ``kernels`` sorted by rank, then start (ties keep the
    table's order).  Several analyses walk the kernels in that order: the
    sort is done once per profile table."""
    return memo.once("rank_start_order", (kernels,), lambda: np.lexsort(
        (kernels["start_ns"].to_numpy(), kernels["rank"].to_numpy())))


def rank_chunks(rank: np.ndarray, size: int = CHUNK) -> list[slice]:
    """Slices of rows sorted by rank, each of whole ranks and of about
    ``size`` rows (a rank with more is a slice of its own): what to work on
    at a time to keep temporaries small."""
    if not len(rank):
        return []
    starts = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]])
    out, a = [], 0
    while a < len(rank):
        i = np.searchsorted(starts, a + size, side="left")
        b = int(starts[i]) if i < len(starts) else len(rank)
        out.append(slice(a, b))
        a = b
    return out


def pieces(win: Windows, rank, start, end, by_rank: bool = False):
    """Cuts intervals ``[start, end)`` to the step windows of their rank.

    An interval is matched with the window holding its start and the window
    holding its end (two pieces when it crosses a step boundary; one that
    spans three or more steps loses its middle).  Returns ``(src, w, s, e)``
    for every non-empty piece: the interval it came from, its window, and
    its ends on the line, sorted by ``s`` (ties keep the intervals' order,
    a second piece before the pieces starting in its window).  ``by_rank``:
    the intervals are sorted by rank then start, so the first pieces come
    sorted and only the few second pieces need placing."""
    if not len(win):            # no step at all (an inference-only run): no piece
        none = np.zeros(0, dtype="int64")
        return none, none, none, none
    first = win.holding(rank, start, by_rank)
    # The window holding the end is the start's unless the end reaches the
    # next window (or the start has none): search for those few only.
    maybe = np.flatnonzero((first < 0) | (end - 1 >= win.next[np.maximum(first, 0)]))
    last = win.holding(rank[maybe], end[maybe] - 1, by_rank)
    cross = (last >= 0) & (last != first[maybe])
    src2, w2 = maybe[cross], last[cross]
    del maybe, last, cross
    src1 = np.flatnonzero(first >= 0)
    w1 = first[src1]
    del first
    sh1 = win.shift(w1)
    s1 = start[src1] + sh1
    e1 = np.minimum(end[src1], win.end[w1]) + sh1
    keep = e1 > s1
    src1, w1, s1, e1 = src1[keep], w1[keep], s1[keep], e1[keep]
    del sh1, keep
    sh2 = win.shift(w2)
    s2 = np.maximum(start[src2], win.start[w2]) + sh2
    e2 = np.minimum(end[src2], win.end[w2]) + sh2
    keep = e2 > s2
    src2, w2, s2, e2 = src2[keep], w2[keep], s2[keep], e2[keep]
    if not by_rank:
        o = np.argsort(s1, kind="stable")
        src1, w1, s1, e1 = src1[o], w1[o], s1[o], e1[o]
    if not len(src2):
        return src1, w1, s1, e1
    o = np.argsort(s2, kind="stable")
    src2, w2, s2, e2 = src2[o], w2[o], s2[o], e2[o]
    at = np.searchsorted(s1, s2, side="left")
    return (np.insert(src1, at, src2), np.insert(w1, at, w2), np.insert(s1, at, s2),
            np.insert(e1, at, e2))


def union_line(s: np.ndarray, e: np.ndarray):
    """Merges intervals sorted by ``s`` into their union (touching
    intervals merge).  Returns ``(first, end)``: the position of each merged
    segment's first interval, and the segment's end."""
    if not len(s):
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype="int64")
    reach = np.maximum.accumulate(e)
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    np.greater(s[1:], reach[:-1], out=new[1:])
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, len(s) - 1)
    return first, reach[last]


def segments(iv: pd.DataFrame) -> pd.DataFrame:
    """The union of intervals ``[start_ns, end_ns)`` per rank, as disjoint
    segments with columns ``rank``, ``s``, ``e``, sorted by rank and ``s``."""
    rank = iv["rank"].to_numpy()
    s, e = _i64(iv, "start_ns"), _i64(iv, "end_ns")
    order = np.lexsort((s, rank))
    return sorted_segments(rank[order], s[order], e[order])


def sorted_segments(rank: np.ndarray, s: np.ndarray, e: np.ndarray) -> pd.DataFrame:
    """:func:`segments` of intervals given sorted by rank, then start."""
    if not len(s):
        return pd.DataFrame({"rank": pd.Series(dtype="int64"), "s": pd.Series(dtype="int64"),
                             "e": pd.Series(dtype="int64")})
    parts = [_segments(rank[c], s[c], e[c]) for c in rank_chunks(rank)]
    return pd.DataFrame({k: np.concatenate([p[i] for p in parts])
                         for i, k in enumerate(("rank", "s", "e"))})


def _segments(rank, s, e):
    # Each rank on its own stretch of one line: [lo_r, hi_r] shifted to
    # start after the previous rank's, so one running maximum serves all.
    bounds = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]])
    lo = np.minimum.reduceat(np.minimum(s, e), bounds)
    hi = np.maximum.reduceat(np.maximum(e, s), bounds)
    base = np.concatenate([[0], np.cumsum(hi - lo + 1)[:-1]])
    sizes = np.diff(np.append(bounds, len(s)))
    sh = np.repeat(base - lo, sizes)
    first, end = union_line(s + sh, e + sh)
    return rank[first], s[first], end - sh[first]


def covered(segs: pd.DataFrame, q: pd.DataFrame) -> np.ndarray:
    """For each query ``[a, b)`` of ``q`` (columns ``rank``, ``a``, ``b``),
    how much of it lies inside the segments of its rank (``segs``: columns
    ``rank``, ``s``, ``e``; disjoint, as :func:`segments` gives them).  A loop
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
