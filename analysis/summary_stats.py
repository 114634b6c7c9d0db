"""Statistics of a summary-mode profile (``msprof run --mode summary``).

Such a profile keeps no kernel or pool event: the profiler folded them
into ``kernel_summary`` (one row per rank, process, operator and stream:
calls, total, shortest, longest and a log2 histogram of the durations) and
``memory_summary`` (one row per rank, process and operator: allocations,
frees, their bytes and the pool's peak).  The tables are small (a row per
operator), so everything here is a few vectorised passes over them.

:func:`op_stats`, :func:`type_stats` and :func:`scope_stats` return the
columns of their :mod:`msprof.analysis.opstats` namesakes, with these
differences:

* ``p50_ns`` and ``p99_ns`` are estimates read off the summed histograms
  (:func:`hist_quantiles`): the kernels of a bucket ``[2**(b-1), 2**b)``
  are taken as spread evenly over it, and the estimate is clamped to the
  row's ``[min_ns, max_ns]``.  It lies in the bucket of one of the two
  kernels the exact percentile interpolates between (when they share a
  bucket, within a factor of two of it), and is exact when every kernel of
  the row lasted the same.
* ``step_share`` and ``per_step_ns`` count every kernel as inside a step:
  the summary keeps no kernel times, so it cannot tell the kernels run
  outside a step (warm-up, evaluation) from the others.
* ``cpu_wait_ns`` and ``blocked_ns`` are absent: a thread's waits are put
  on the kernels they overlap, which needs the kernels' times.

:func:`memory_peaks` and :func:`memory_by_op` are the memory views a
summary can give (a free carries the operator that allocated the block, so
``alloc_bytes - freed_bytes`` is what an operator still held at the end).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import opstats
from msprof.analysis.groupstats import Groups
from msprof.analysis.memory import with_op_names
from msprof.analysis.schema import HIST_BUCKETS


def _select(df: pd.DataFrame, rank: int | None) -> pd.DataFrame:
    return df if rank is None else df[df["rank"] == rank]


# The histogram.

def bucket(dur_ns) -> np.ndarray:
    """The histogram bucket of each duration: its bit length (0 for 0), the
    last bucket for anything longer (as the profiler counts them)."""
    d = np.maximum(np.asarray(dur_ns, dtype=np.int64), 0)
    exponent = np.frexp(d.astype(np.float64))[1]     # bit length, exact below 2**53
    return np.minimum(exponent, HIST_BUCKETS - 1).astype(np.intp)


def bucket_bounds() -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of every bucket: ``[2**(b-1), 2**b)``, ``[0, 0]`` for
    bucket 0 (the last bucket's high end is open: see :func:`hist_quantiles`)."""
    b = np.arange(HIST_BUCKETS, dtype=np.float64)
    return np.where(b == 0, 0.0, 2.0 ** (b - 1)), np.where(b == 0, 0.0, 2.0 ** b)


def hist_matrix(hist: pd.Series) -> np.ndarray:
    """The ``hist`` column as an (rows, HIST_BUCKETS) int64 matrix.  A
    shorter list is padded with zeros; a longer one's tail is added to the
    last bucket, which holds everything longer."""
    out = np.zeros((len(hist), HIST_BUCKETS), dtype=np.int64)
    for i, h in enumerate(hist.to_numpy()):      # a row per operator: small
        h = np.asarray(h, dtype=np.int64)
        n = min(len(h), HIST_BUCKETS)
        out[i, :n] = h[:n]
        if len(h) > HIST_BUCKETS:
            out[i, -1] += h[HIST_BUCKETS:].sum()
    return out


def hist_quantiles(hist: np.ndarray, min_ns, max_ns, qs) -> list[np.ndarray]:
    """Per row of ``hist`` (rows x buckets) and for each ``q`` of ``qs``, the
    estimated q-quantile of the durations (NaN for an empty row).

    The count ``q x n`` (``n``: the row's kernels) is reached in bucket b,
    ``f`` of the way through its kernels; the estimate is ``low + f x (high
    - low)`` of that bucket (the last bucket's high end is the row's
    ``max_ns`` when that is larger), clamped to ``[min_ns, max_ns]``."""
    hist = np.asarray(hist, dtype=np.int64)
    rows = np.arange(len(hist))
    n = hist.sum(axis=1)
    cum = hist.cumsum(axis=1)
    low, high = bucket_bounds()
    lo_ns = np.asarray(min_ns, dtype=np.float64)
    hi_ns = np.asarray(max_ns, dtype=np.float64)
    out = []
    for q in qs:
        target = q * n
        # The first non-empty bucket whose running count reaches the target.
        b = ((cum >= target[:, None]) & (hist > 0)).argmax(axis=1)
        count = hist[rows, b]
        before = cum[rows, b] - count
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.clip((target - before) / count, 0.0, 1.0)
        top = np.where(b == HIST_BUCKETS - 1, np.maximum(high[b], hi_ns), high[b])
        est = np.clip(low[b] + frac * (top - low[b]), lo_ns, hi_ns)
        out.append(np.where(n > 0, est, np.nan))
    return out


# Operators, types, scopes.

def _aggregate(summary: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame,
               keys: list[str], per_rank: bool):
    """The statistics of the summary rows grouped by ``keys`` (columns of
    :func:`opstats.operators`' table); and the operators with their group."""
    codes, table = opstats.operators(summary, ops)
    g, by_op, out = opstats.op_groups(codes, table, keys)
    calls = summary["calls"].to_numpy(dtype="int64")
    total = summary["total_ns"].to_numpy(dtype="int64")
    out["calls"] = g.sum(calls)
    out["total_ns"] = g.sum(total)
    out["self_ns"] = out["total_ns"]
    out["mean_ns"] = out["total_ns"] / out["calls"]
    out["min_ns"] = g.min(summary["min_ns"])
    out["max_ns"] = g.max(summary["max_ns"])
    hist = np.zeros((g.n, HIST_BUCKETS), dtype=np.int64)
    np.add.at(hist, g.codes, hist_matrix(summary["hist"]))
    out["p50_ns"], out["p99_ns"] = hist_quantiles(hist, out["min_ns"], out["max_ns"], [0.5, 0.99])
    out["in_step_ns"] = out["total_ns"]          # every kernel counted inside a step
    per_op_calls = Groups(codes, len(table)).sum(calls)
    out["flops_total"] = opstats.sum_per_group(
        by_op, len(out), per_op_calls * table["flops"].to_numpy(dtype="int64"))
    out["bytes_total"] = opstats.sum_per_group(
        by_op, len(out), per_op_calls * table["bytes"].to_numpy(dtype="int64"))
    out["ranks"] = opstats.ranks_per_group(table, by_op, len(out))
    kernel_time = opstats.kernel_time_per_rank(codes, table, total)
    return opstats.rates_and_shares(out, kernel_time, steps, per_rank), (table, by_op)


def op_stats(kernel_summary: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame,
             rank: int | None = None, per_rank: bool = False) -> pd.DataFrame:
    """One row per operator, as :func:`msprof.analysis.opstats.op_stats`
    (less ``cpu_wait_ns`` and ``blocked_ns``; percentiles estimated)."""
    keys = (["rank"] if per_rank else []) + opstats.OP_KEYS
    out, _ = _aggregate(_select(kernel_summary, rank), ops, _select(steps, rank), keys, per_rank)
    return opstats.op_rows(out, keys)


def type_stats(kernel_summary: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame,
               rank: int | None = None, per_rank: bool = False) -> pd.DataFrame:
    """One row per operator type, as :func:`msprof.analysis.opstats.type_stats`."""
    keys = (["rank"] if per_rank else []) + ["type"]
    out, (table, by_op) = _aggregate(_select(kernel_summary, rank), ops, _select(steps, rank),
                                     keys, per_rank)
    return opstats.type_rows(out, table, by_op, keys)


def scope_stats(kernel_summary: pd.DataFrame, ops: pd.DataFrame, rank: int | None = None,
                per_rank: bool = False, depth: int | None = None) -> pd.DataFrame:
    """One row per scope prefix, as :func:`msprof.analysis.opstats.scope_stats`."""
    s = _select(kernel_summary, rank)
    keys = ["rank"] if per_rank else []
    codes, table = opstats.operators(s, ops)
    g, _, per_op = opstats.op_groups(codes, table, keys + ["scope", "name"])
    total = s["total_ns"].to_numpy(dtype="int64")
    per_op["self_calls"] = g.sum(s["calls"].to_numpy(dtype="int64"))
    per_op["self_ns"] = g.sum(total)
    kernel_time = opstats.kernel_time_per_rank(codes, table, total)
    return opstats.scope_rows(per_op, keys, kernel_time, per_rank, depth)


# Memory.

_MEMORY_SUMS = ["allocs", "alloc_bytes", "frees", "freed_bytes"]


def memory_by_op(memory_summary: pd.DataFrame, ops: pd.DataFrame,
                 rank: int | None = None) -> pd.DataFrame:
    """Per rank and allocating operator: ``allocs``, ``alloc_bytes``,
    ``frees``, ``freed_bytes`` and ``held_bytes`` (allocated and not freed
    by the end), with its ``name`` and ``scope`` (``(outside ops)`` for op_id
    -1: parameters, optimizer state, graph inputs).  What was still held
    first, then by bytes allocated."""
    m = _select(memory_summary, rank)
    cols = ["rank", "op_id", "name", "scope"] + _MEMORY_SUMS + ["held_bytes"]
    if m.empty:
        return pd.DataFrame({c: pd.Series(dtype="object" if c in ("name", "scope") else "int64")
                             for c in cols})
    g = m.groupby(["rank", "op_id"], as_index=False)[_MEMORY_SUMS].sum()   # processes merged
    g["held_bytes"] = g["alloc_bytes"] - g["freed_bytes"]
    g = with_op_names(g, ops)
    return g[cols].sort_values(["held_bytes", "alloc_bytes", "rank", "op_id"],
                               ascending=[False, False, True, True],
                               kind="stable").reset_index(drop=True)


def memory_peaks(memory_summary: pd.DataFrame, ops: pd.DataFrame,
                 rank: int | None = None) -> pd.DataFrame:
    """Per rank: ``peak`` (the pool's largest bytes in use, as seen right
    after an allocation) and the operator whose allocation reached it
    (``op_id``, ``name``, ``scope``)."""
    m = _select(memory_summary, rank)
    m = m[m["allocs"] > 0]
    cols = ["rank", "peak", "op_id", "name", "scope"]
    if m.empty:
        return pd.DataFrame({c: pd.Series(dtype="object" if c in ("name", "scope") else "int64")
                             for c in cols})
    top = m.sort_values(["rank", "peak_in_use", "op_id"], ascending=[True, False, True],
                        kind="stable").drop_duplicates("rank")
    out = pd.DataFrame({"rank": top["rank"].to_numpy(), "op_id": top["op_id"].to_numpy(),
                        "peak": top["peak_in_use"].to_numpy()})
    return with_op_names(out, ops)[cols].reset_index(drop=True)


def memory_verdict(peaks: pd.DataFrame, by_op: pd.DataFrame) -> str:
    """One line: the highest peak, who reached it, what was still held."""
    if peaks.empty:
        return "no memory events recorded"
    top = peaks.loc[peaks["peak"].idxmax()]
    held = int(by_op["held_bytes"].clip(lower=0).sum())
    return (f"peak {int(top['peak']):,} bytes on rank {int(top['rank'])}, at an allocation "
            f"by {top['name']}; {held:,} bytes still held at the end")
