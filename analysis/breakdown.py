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
:func:`msprof.analysis.intervals.pieces` for boundary cases.

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
``cpu_wait_ns``: time in the step a thread that runs compute kernels was
runnable but waited for a CPU that another thread or process held (the
``cpu_waits`` table, eBPF only; 0 without it; a wait that ended on an
idle CPU is that CPU waking up, and does not count).  Such a thread only
waits with work to do: inside a kernel, the kernel stretches
(``compute_cpu_wait_ns``, the part of ``compute_ns`` the competition for
the cores took, not the kernels); between kernels, a launched kernel
starts late (idle time with work queued).
Communication is the kernels on the communication stream (and, for a
rank without any, its ``comms`` rows: see :func:`work`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import comm as _comm
from msprof.analysis.intervals import (Timeline, Windows, covered, pieces, rank_chunks,
                                      rank_start_order, union_line)

_NEVER = np.iinfo("int64").min  # launch time of a kernel launched "long ago"
COMM_STREAM = _comm.COMM_STREAM


def _select(df: pd.DataFrame, rank: int | None) -> pd.DataFrame:
    return df if rank is None else df[df["rank"] == rank]


def _select_or_none(df: pd.DataFrame | None, rank: int | None) -> pd.DataFrame | None:
    return None if df is None else _select(df, rank)


def _i64(df: pd.DataFrame, col: str) -> np.ndarray:
    return df[col].to_numpy(dtype="int64")


def _extra_comms(kernels: pd.DataFrame, comm: np.ndarray, comms: pd.DataFrame | None):
    """The ``comms`` rows of ranks without a communication kernel (see
    :func:`work`), or None."""
    if comms is None or comms.empty:
        return None
    c = comms[~comms["rank"].isin(np.unique(kernels["rank"].to_numpy()[comm]))]
    return None if c.empty else c


def _is_comm(kernels: pd.DataFrame) -> np.ndarray:
    if "stream" not in kernels:
        return np.zeros(len(kernels), dtype=bool)
    return (kernels["stream"] == COMM_STREAM).to_numpy()


def work(kernels: pd.DataFrame, comms: pd.DataFrame | None) -> pd.DataFrame:
    """What kept each rank's device busy: its kernels (``real`` 1), with
    ``comm`` telling communication from compute.  A rank with ``comms`` rows
    but no communication kernel (collectives seen by MPI uprobes only) gets
    those rows as communication (``real`` 0, launch time unknown, ``op_id``
    -1); otherwise they lie inside its communication kernels already."""
    comm = _is_comm(kernels)
    k = kernels[["rank", "op_id", "launch_ns", "start_ns", "dur_ns"]].assign(comm=comm, real=1)
    c = _extra_comms(kernels, comm, comms)
    if c is None:
        return k
    c = pd.DataFrame({"rank": c["rank"], "op_id": -1, "launch_ns": 0,
                      "start_ns": c["start_ns"], "dur_ns": c["dur_ns"],
                      "comm": True, "real": 0})
    return pd.concat([k, c], ignore_index=True)


class _Work:
    """:func:`work` as arrays, and ``row``: its rows sorted by rank then
    start (ties keep the table's order, the ``comms`` rows after the
    kernels; rows from ``n_real`` on are ``comms`` rows), walked a chunk of
    whole ranks at a time (:meth:`chunks`)."""

    def __init__(self, kernels: pd.DataFrame, comms: pd.DataFrame | None):
        self.comm = _is_comm(kernels)
        self.op, self.launch = _i64(kernels, "op_id"), _i64(kernels, "launch_ns")
        self.rank, self.start = kernels["rank"].to_numpy(), _i64(kernels, "start_ns")
        self.dur = _i64(kernels, "dur_ns")
        self.n_real = len(kernels)
        c = _extra_comms(kernels, self.comm, comms)
        if c is None:
            self.row = rank_start_order(kernels)
        else:
            n = len(c)
            self.rank = np.concatenate([self.rank, c["rank"].to_numpy()])
            self.start = np.concatenate([self.start, _i64(c, "start_ns")])
            self.dur = np.concatenate([self.dur, _i64(c, "dur_ns")])
            self.comm = np.concatenate([self.comm, np.ones(n, dtype=bool)])
            self.op = np.concatenate([self.op, np.full(n, -1, dtype="int64")])
            self.launch = np.concatenate([self.launch, np.zeros(n, dtype="int64")])
            self.row = np.lexsort((self.start, self.rank))

    def chunks(self):
        """``(row, rank, start, end)`` of the sorted rows, whole ranks at a
        time (about :data:`~msprof.analysis.intervals.CHUNK` rows each)."""
        rank = self.rank[self.row]
        for c in rank_chunks(rank):
            row = self.row[c]
            start = self.start[row]
            yield row, rank[c], start, start + self.dur[row]


_GAP_DTYPES = {"rank": "int32", "step": "int64", "start_ns": "int64", "end_ns": "int64",
               "dur_ns": "int64", "host_ns": "int64", "queued_ns": "int64",
               "next_op_id": "int64", "tail": bool}


def _per_window(win: Windows, w: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(win), dtype="int64")
    np.add.at(out, w, values)
    return out


def _union_per_window(win: Windows, w, s, e):
    """Per window, the time covered by pieces sorted by ``s`` (line
    coordinates); and the merged segments as ``(w, s, e)``."""
    first, end = union_line(s, e)
    ws, ss = w[first], s[first]
    return _per_window(win, ws, end - ss), (ws, ss, end)


class _Timeline:
    """Busy segments, gaps and per-window totals of one set of work
    pieces: the costly part shared by :func:`step_breakdown` and
    :func:`gaps`."""

    def __init__(self, wk: _Work, win: Windows):
        self.win = win
        n = len(win)
        self.kernels, self.busy_ns = np.zeros(n, dtype="int64"), np.zeros(n, dtype="int64")
        self.comm_ns, self.compute_ns = np.zeros(n, dtype="int64"), np.zeros(n, dtype="int64")
        segs, compute = [], []
        for chunk in wk.chunks():   # windows never span ranks: chunks add up
            segs.append(self._add(wk, *chunk, compute))
        self.seg_w, self.seg_s, self.seg_e, self.seg_pending, self.seg_op = (
            np.concatenate([p[i] for p in segs]) if segs else np.zeros(0, dtype="int64")
            for i in range(5))
        self.compute = tuple(np.concatenate([p[i] for p in compute]) if compute
                             else np.zeros(0, dtype="int64") for i in range(3))

    def _add(self, wk: _Work, row, rank, start, end, compute: list):
        """Adds the pieces of one chunk of work to the per-window totals;
        returns its busy segments ``(w, s, e, pending, op)`` and appends
        its compute segments to ``compute``."""
        win = self.win
        src, w, s, e = pieces(win, rank, start, end, by_rank=True)
        del rank, start, end
        row = row[src]
        del src
        comm = wk.comm[row]
        self.kernels += np.bincount(w[row < wk.n_real], minlength=len(win))
        self.comm_ns += _union_per_window(win, w[comm], s[comm], e[comm])[0]
        busy, segs = _union_per_window(win, w[~comm], s[~comm], e[~comm])
        self.compute_ns += busy
        compute.append(segs)
        del comm
        # Launch times, clipped to the piece's window (which leaves the
        # host-gap formula unchanged, as gaps lie inside their window), on
        # the line: a running minimum from the end then restarts by itself
        # at each window and gives, at each piece, the earliest launch of
        # the pieces from there to the end of its window.
        launch = wk.launch[row]
        launch = np.where(launch > 0, launch, _NEVER)
        launch = np.clip(launch, win.start[w], win.end[w]) + win.shift(w)
        pending = np.minimum.accumulate(launch[::-1])[::-1]
        del launch
        first, end = union_line(s, e)
        sw, ss = w[first], s[first]
        self.busy_ns += _per_window(win, sw, end - ss)
        return sw, ss, end, pending[first], wk.op[row[first]]

    def gaps(self) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The gaps of :func:`gaps`; and per window, their ``host_ns`` and
        ``queued_ns``."""
        win, w, s, e = self.win, self.seg_w, self.seg_s, self.seg_e
        same = np.zeros(len(w), dtype=bool)
        same[1:] = w[1:] == w[:-1]
        g0 = np.where(same, np.roll(e, 1), win.off[w])  # all on the line
        host = np.clip(self.seg_pending, g0, s) - g0
        last = np.ones(len(w), dtype=bool)
        last[:-1] = ~same[1:]
        tw = w[last]                                   # a tail after the last segment
        empty = np.ones(len(win), dtype=bool)
        empty[w] = False
        ew = np.flatnonzero(empty)                     # the whole of a window without work
        n = len(tw) + len(ew)
        gw = np.concatenate([w, tw, ew])
        start = np.concatenate([g0, e[last], win.off[ew]])
        end = np.concatenate([s, win.off[tw] + win.ns[tw], win.off[ew] + win.ns[ew]])
        host = np.concatenate([host, np.zeros(n, dtype="int64")])
        nxt = np.concatenate([self.seg_op, np.full(n, -1, dtype="int64")])
        tail = np.concatenate([np.zeros(len(w), dtype=bool), np.ones(n, dtype=bool)])
        keep = end > start
        gw, start, end, host, nxt, tail = (a[keep] for a in (gw, start, end, host, nxt, tail))
        sh = win.shift(gw)
        start, end = start - sh, end - sh
        queued = np.where(tail, 0, (end - start) - host)
        g = pd.DataFrame({
            "rank": win.rank[gw], "step": win.step[gw], "start_ns": start, "end_ns": end,
            "dur_ns": end - start, "host_ns": host, "queued_ns": queued,
            "next_op_id": nxt, "tail": tail,
        }).astype(_GAP_DTYPES)
        order = np.lexsort((start, win.step[gw], win.rank[gw]))
        return (g.take(order).reset_index(drop=True), _per_window(win, gw, host),
                _per_window(win, gw, queued))


def _timeline(kernels, steps, comms, rank):
    steps = _select(steps, rank)
    c = _select(comms, rank) if comms is not None else None
    win = Windows(steps)
    return _Timeline(_Work(_select(kernels, rank), c), win)


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
    return _timeline(kernels, steps, comms, rank).gaps()[0]


def _memory_peaks(memory: pd.DataFrame, win: Windows) -> pd.arrays.IntegerArray:
    """Per window: the highest ``in_use`` during it, counting the level
    carried in from before it (<NA> without memory events)."""
    peak = np.zeros(len(win), dtype="int64")
    has = np.zeros(len(win), dtype=bool)
    if not memory.empty and len(win):
        events = Timeline(_i64(memory, "rank"), _i64(memory, "ts_ns"))  # by rank, then time
        ts, in_use = events.t, _i64(memory, "in_use")[events.order]
        w = win.holding(events.rank, ts, by_rank=True)
        inside = w >= 0
        inside[inside] = ts[inside] < win.end[w[inside]]
        during = np.full(len(win), np.iinfo("int64").min)
        np.maximum.at(during, w[inside], in_use[inside])
        has[w[inside]] = True
        # The level at the window's start: the latest event at or before it.
        i = events.latest(win.rank, win.start, by_rank=True)
        carried = np.where(i >= 0, in_use[i], np.iinfo("int64").min)
        has |= i >= 0
        peak = np.maximum(during, carried)
    return pd.arrays.IntegerArray(np.where(has, peak, 0), ~has)


def breakdown_and_gaps(kernels: pd.DataFrame, steps: pd.DataFrame, memory: pd.DataFrame,
                       comms: pd.DataFrame | None = None, rank: int | None = None,
                       cpu_waits: pd.DataFrame | None = None):
    """``(step_breakdown(...), gaps(...))`` computed together (they share
    the costly part)."""
    return _step_breakdown(kernels, steps, memory, comms, rank, with_gaps=True,
                           cpu_waits=cpu_waits)


def step_breakdown(kernels: pd.DataFrame, steps: pd.DataFrame, memory: pd.DataFrame,
                   comms: pd.DataFrame | None = None, rank: int | None = None,
                   cpu_waits: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (rank, step) with ``start_ns``, ``step_ns``, ``busy_ns``,
    ``host_gap_ns``, ``idle_ns`` (these three sum to ``step_ns`` exactly),
    ``queued_ns`` (the part of idle_ns in which a launched kernel waited),
    ``kernels`` (kernels that ran in the step), ``comm_ns``, ``mem_peak``
    (highest bytes in use in the pool during the step; <NA> without memory
    events), and the split of busy time described in the module docstring:
    ``compute_ns``, ``exposed_comm_ns``, ``bubble_ns`` (with host_gap_ns and
    idle_ns they sum to step_ns), ``overlapped_comm_ns``, ``comm_wait_ns``,
    ``cpu_wait_ns`` and ``compute_cpu_wait_ns`` (from ``cpu_waits``), and
    ``between_steps_ns``: the time from the step's end until the rank's
    next step begins (data loading, preprocessing, logging: outside the
    step, so not part of ``step_ns``; <NA> for a rank's last step).

    ``comms`` holds every rank's collectives (waits are found by matching
    ranks, so pass them all even when ``rank`` selects one)."""
    return _step_breakdown(kernels, steps, memory, comms, rank, cpu_waits=cpu_waits)


def _with_compute(tl: _Timeline, iv: pd.DataFrame) -> np.ndarray:
    """Per window, the time covered by compute or by the intervals ``iv``
    (``rank``, ``start_ns``, ``end_ns``): the compute segments are few, so
    merging them with the intervals' pieces is cheap."""
    win = tl.win
    _, w, s, e = pieces(win, iv["rank"].to_numpy(), _i64(iv, "start_ns"), _i64(iv, "end_ns"))
    cw, cs, ce = tl.compute
    w, s, e = np.concatenate([cw, w]), np.concatenate([cs, s]), np.concatenate([ce, e])
    order = np.argsort(s, kind="stable")
    return _union_per_window(win, w[order], s[order], e[order])[0]


def _cpu_wait(tl: _Timeline, kernels: pd.DataFrame, waits: pd.DataFrame | None):
    """Per window: the time one of the threads that run the rank's compute
    kernels waited for a busy CPU (the union of those threads' waits, cut
    to the windows), and the part of it inside compute."""
    win = tl.win
    total, inside = np.zeros(len(win), dtype="int64"), np.zeros(len(win), dtype="int64")
    if waits is None or waits.empty or not len(win):
        return total, inside
    waits = waits[~waits["idle_cpu"].to_numpy(dtype=bool)]
    comp = kernels[~_is_comm(kernels)]
    key = lambda df: (_i64(df, "rank") << 32) | (_i64(df, "tid") & 0xFFFFFFFF)  # noqa: E731
    waits = waits[np.isin(key(waits), np.unique(key(comp)))]
    if waits.empty:
        return total, inside
    start = _i64(waits, "start_ns")
    _, w, s, e = pieces(win, waits["rank"].to_numpy(), start, start + _i64(waits, "dur_ns"))
    first, end = union_line(s, e)          # waits of several threads at once count once
    w, s = w[first], s[first]
    cw, cs, ce = tl.compute
    order = np.argsort(cs, kind="stable")
    during = covered(pd.DataFrame({"rank": 0, "s": cs[order], "e": ce[order]}),
                     pd.DataFrame({"rank": 0, "a": s, "b": end}))
    return _per_window(win, w, end - s), _per_window(win, w, during)


def _step_breakdown(kernels, steps, memory, comms, rank, with_gaps=False, cpu_waits=None):
    tl = _timeline(kernels, steps, comms, rank)
    win = tl.win
    g, host, queued = tl.gaps()
    compute = tl.compute_ns
    if comms is not None and not comms.empty:
        wt = _select(_comm.waits(comms), rank)
        bubble = _with_compute(tl, wt[wt["p2p"]]) - compute
        waited = _with_compute(tl, wt) - compute
    else:
        bubble = waited = compute * 0
    steps = _select(steps, rank)
    out = steps[["rank", "step", "start_ns", "dur_ns"]].take(win.order).rename(
        columns={"dur_ns": "step_ns"}).reset_index(drop=True)
    out["busy_ns"] = tl.busy_ns
    out["host_gap_ns"] = host
    out["idle_ns"] = win.ns - tl.busy_ns - host
    out["queued_ns"] = queued
    out["kernels"] = tl.kernels
    out["comm_ns"] = tl.comm_ns
    out["mem_peak"] = _memory_peaks(_select(memory, rank), win)
    out["compute_ns"] = compute
    out["bubble_ns"] = bubble
    out["exposed_comm_ns"] = tl.busy_ns - compute - bubble
    out["overlapped_comm_ns"] = compute + tl.comm_ns - tl.busy_ns
    out["comm_wait_ns"] = waited - bubble
    out["cpu_wait_ns"], out["compute_cpu_wait_ns"] = _cpu_wait(
        tl, _select(kernels, rank), _select_or_none(cpu_waits, rank))
    order = np.lexsort((win.step, win.rank))
    out = out.take(order).reset_index(drop=True)
    out["between_steps_ns"] = _between_steps(out)
    return (out, g) if with_gaps else out


def _between_steps(out: pd.DataFrame) -> pd.arrays.IntegerArray:
    """Per step, the time from its end until its rank's next step begins
    (<NA> for a rank's last step): outside every step window, so not a
    part of ``step_ns`` (see :mod:`msprof.analysis.between_steps`)."""
    by_start = out.sort_values(["rank", "start_ns"], kind="stable")
    nxt = by_start.groupby("rank")["start_ns"].shift(-1).reindex(out.index)
    gap = (nxt - out["start_ns"] - out["step_ns"]).clip(lower=0)
    return pd.array(gap.round(), dtype="Int64")


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
             "compute_ns", "exposed_comm_ns", "bubble_ns", "overlapped_comm_ns", "comm_wait_ns",
             "cpu_wait_ns", "compute_cpu_wait_ns"]
    g = step_df.groupby("rank")
    out = g[parts].mean()
    out.insert(0, "steps", g.size())
    for part in ("busy", "host_gap", "idle", "compute", "exposed_comm", "bubble"):
        out[f"{part}_frac"] = out[f"{part}_ns"] / out["step_ns"]
    mem = _select(memory, rank)
    out["mem_peak"] = mem.groupby("rank")["in_use"].max().reindex(out.index).astype("Int64")
    return out.reset_index()
