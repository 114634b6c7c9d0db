"""Summary mode: kernels and pool events folded into per-operator aggregates.

The eBPF backend folds them in the kernel (probes/trace.c, maps
``kernel_stats`` and ``memory_stats``) and hands over the maps when the run
ends; the in-process backend's records are folded here, by the collector,
into the very same layout (probes/events.py ``KERNEL_STATS`` and
``MEMORY_STATS``).  Either way the profile gets the tables
``kernel_summary`` and ``memory_summary`` and no kernel or memory rows.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from numpy.lib import recfunctions as rfn

from msprof.probes import events as ev
from msprof.profiler.decode import SCHEMAS, RankMap

# Folded batches are merged once this many are pending: a long run keeps a
# few rows per operator, not a row per batch.
MERGE_EVERY = 64


def bucket(dur_ns: np.ndarray) -> np.ndarray:
    """The histogram bucket of each duration: its bit length (0 for 0),
    the last bucket for anything longer."""
    d = np.maximum(np.asarray(dur_ns, dtype=np.int64), 0)
    b = np.frexp(d.astype(np.float64))[1]       # exact: durations stay below 2**53
    return np.minimum(b, ev.HIST_BUCKETS - 1).astype(np.intp)


def fold_kernels(recs: np.ndarray) -> np.ndarray:
    """KERNEL and CPU_OP records -> one KERNEL_STATS row per (pid, stream,
    op_id): a kernel's time from its start (a2) to its end, a framework
    operator's its self time (a1), as probes/trace.c folds them."""
    keys = np.empty(len(recs), dtype=[("pid", "u4"), ("stream", "u4"), ("op_id", "i8")])
    keys["pid"], keys["stream"], keys["op_id"] = recs["pid"], recs["sub"], recs["a0"]
    uniq, inv = np.unique(keys, return_inverse=True)
    inv = inv.ravel()
    dur = np.where(recs["type"] == ev.CPU_OP, recs["a1"],
                   recs["ts"].astype(np.int64) - recs["a2"])
    dur = np.maximum(dur, 0)
    out = np.zeros(len(uniq), ev.KERNEL_STATS)
    for f in ("pid", "stream", "op_id"):
        out[f] = uniq[f]
    out["calls"] = np.bincount(inv, minlength=len(uniq))
    np.add.at(out["total_ns"], inv, dur.astype(np.uint64))
    lo = np.full(len(uniq), np.iinfo(np.int64).max, np.int64)
    hi = np.zeros(len(uniq), np.int64)
    np.minimum.at(lo, inv, dur)
    np.maximum.at(hi, inv, dur)
    out["min_ns"], out["max_ns"] = lo, hi
    np.add.at(out["hist"], (inv, bucket(dur)), 1)
    return out


def fold_memory(recs: np.ndarray) -> np.ndarray:
    """MEM_ALLOC/MEM_FREE records -> one MEMORY_STATS row per (pid, op_id)."""
    keys = np.empty(len(recs), dtype=[("pid", "u4"), ("op_id", "i8")])
    keys["pid"], keys["op_id"] = recs["pid"], recs["a2"]
    uniq, inv = np.unique(keys, return_inverse=True)
    inv = inv.ravel()
    alloc = recs["type"] == ev.MEM_ALLOC
    size = recs["a1"].astype(np.uint64)
    n = len(uniq)
    out = np.zeros(n, ev.MEMORY_STATS)
    out["pid"], out["op_id"] = uniq["pid"], uniq["op_id"]
    np.add.at(out["allocs"], inv[alloc], 1)
    np.add.at(out["alloc_bytes"], inv[alloc], size[alloc])
    np.add.at(out["frees"], inv[~alloc], 1)
    np.add.at(out["freed_bytes"], inv[~alloc], size[~alloc])
    peak = np.zeros(n, np.int64)
    np.maximum.at(peak, inv[alloc], recs["a3"][alloc])
    out["peak_in_use"] = peak
    return out


def merge_kernels(parts: list[np.ndarray]) -> np.ndarray:
    """Rows of several folds (or of the BPF map) -> one row per key."""
    rows = np.concatenate(parts) if parts else np.zeros(0, ev.KERNEL_STATS)
    uniq, inv = np.unique(rfn.repack_fields(rows[["pid", "stream", "op_id"]]), return_inverse=True)
    inv = inv.ravel()
    out = np.zeros(len(uniq), ev.KERNEL_STATS)
    for f in ("pid", "stream", "op_id"):
        out[f] = uniq[f]
    for f in ("calls", "total_ns"):
        np.add.at(out[f], inv, rows[f])
    out["min_ns"] = np.iinfo(np.uint64).max
    np.minimum.at(out["min_ns"], inv, rows["min_ns"])
    np.maximum.at(out["max_ns"], inv, rows["max_ns"])
    np.add.at(out["hist"], inv, rows["hist"])
    return out


def merge_memory(parts: list[np.ndarray]) -> np.ndarray:
    rows = np.concatenate(parts) if parts else np.zeros(0, ev.MEMORY_STATS)
    uniq, inv = np.unique(rfn.repack_fields(rows[["pid", "op_id"]]), return_inverse=True)
    inv = inv.ravel()
    out = np.zeros(len(uniq), ev.MEMORY_STATS)
    out["pid"], out["op_id"] = uniq["pid"], uniq["op_id"]
    for f in ("allocs", "alloc_bytes", "frees", "freed_bytes"):
        np.add.at(out[f], inv, rows[f])
    np.maximum.at(out["peak_in_use"], inv, rows["peak_in_use"])
    return out


class Summarizer:
    """Takes the kernel and pool records out of each drained batch and
    folds them; ``tables()`` gives the summary tables at the end."""

    def __init__(self):
        self._kernels: list[np.ndarray] = []
        self._memory: list[np.ndarray] = []

    def take(self, recs: np.ndarray) -> np.ndarray:
        """Folds the batch's KERNEL, CPU_OP and MEM_* records; returns the others."""
        if len(recs) == 0:
            return recs
        t = recs["type"]
        kern = (t == ev.KERNEL) | (t == ev.CPU_OP)
        mem = (t == ev.MEM_ALLOC) | (t == ev.MEM_FREE)
        if kern.any():
            self._kernels.append(fold_kernels(recs[kern]))
            if len(self._kernels) >= MERGE_EVERY:
                self._kernels = [merge_kernels(self._kernels)]
        if mem.any():
            self._memory.append(fold_memory(recs[mem]))
            if len(self._memory) >= MERGE_EVERY:
                self._memory = [merge_memory(self._memory)]
        return recs[~(kern | mem)] if (kern | mem).any() else recs

    def add(self, kernels: np.ndarray, memory: np.ndarray) -> None:
        """Rows folded elsewhere (the BPF maps)."""
        if len(kernels):
            self._kernels.append(np.asarray(kernels, ev.KERNEL_STATS))
        if len(memory):
            self._memory.append(np.asarray(memory, ev.MEMORY_STATS))

    def tables(self, ranks: RankMap) -> dict[str, pa.Table]:
        return to_tables(merge_kernels(self._kernels), merge_memory(self._memory), ranks)


def to_tables(kernels: np.ndarray, memory: np.ndarray, ranks: RankMap) -> dict[str, pa.Table]:
    """KERNEL_STATS and MEMORY_STATS rows -> kernel_summary and memory_summary."""
    out = {}
    if len(kernels):
        hist = pa.FixedSizeListArray.from_arrays(
            pa.array(kernels["hist"].astype(np.int64).ravel()), ev.HIST_BUCKETS)
        out["kernel_summary"] = pa.Table.from_arrays([
            pa.array(ranks.lookup(kernels["pid"].astype(np.int64))),
            pa.array(kernels["pid"].astype(np.int32)), pa.array(kernels["op_id"].astype(np.int64)),
            pa.array(kernels["stream"].astype(np.int16)),
            *[pa.array(kernels[f].astype(np.int64)) for f in ("calls", "total_ns", "min_ns", "max_ns")],
            hist.cast(SCHEMAS["kernel_summary"].field("hist").type),
        ], schema=SCHEMAS["kernel_summary"])
    if len(memory):
        out["memory_summary"] = pa.Table.from_arrays([
            pa.array(ranks.lookup(memory["pid"].astype(np.int64))),
            pa.array(memory["pid"].astype(np.int32)), pa.array(memory["op_id"].astype(np.int64)),
            *[pa.array(memory[f].astype(np.int64))
              for f in ("allocs", "alloc_bytes", "frees", "freed_bytes", "peak_in_use")],
        ], schema=SCHEMAS["memory_summary"])
    return out
