"""Raw records (probes/events.py layouts) -> typed rows of the profile tables.

Both backends produce the same records, so this is the one place where a
record becomes a row.  Everything here is vectorised over a batch.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from msprof.probes import events as ev

SCHEMAS = {
    "kernels": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("tid", pa.int32()),
        ("op_id", pa.int64()), ("stream", pa.int16()), ("seq", pa.int64()),
        ("step", pa.int64()), ("launch_ns", pa.int64()), ("start_ns", pa.int64()),
        ("dur_ns", pa.int64()), ("total_ns", pa.int64()), ("depth", pa.int16()),
    ]),
    "ops": pa.schema([
        ("rank", pa.int32()), ("op_id", pa.int64()), ("graph_id", pa.int64()),
        ("name", pa.string()), ("type", pa.string()), ("scope", pa.string()),
        ("flops", pa.int64()), ("bytes", pa.int64()),
    ]),
    "memory": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("ts_ns", pa.int64()),
        ("addr", pa.int64()), ("size", pa.int64()), ("op_id", pa.int64()),
        ("in_use", pa.int64()),
    ]),
    "comms": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("tid", pa.int32()),
        ("kind", pa.string()), ("bytes", pa.int64()), ("group", pa.int64()),
        ("peer", pa.int64()), ("seq", pa.int64()), ("step", pa.int64()),
        ("start_ns", pa.int64()), ("dur_ns", pa.int64()),
    ]),
    "steps": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("step", pa.int64()),
        ("start_ns", pa.int64()), ("dur_ns", pa.int64()), ("samples", pa.int64()),
    ]),
    "cpu_waits": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("tid", pa.int32()),
        ("start_ns", pa.int64()), ("dur_ns", pa.int64()), ("cpu", pa.int32()),
        ("idle_cpu", pa.bool_()), ("holder_pid", pa.int32()),
    ]),
    "blocked": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("tid", pa.int32()),
        ("start_ns", pa.int64()), ("dur_ns", pa.int64()),
    ]),
    "cpu_time": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("tid", pa.int32()),
        ("cpu", pa.int32()), ("ns", pa.int64()),
    ]),
    # Summary mode (profiler/summary.py); empty in trace mode.
    "kernel_summary": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("op_id", pa.int64()),
        ("stream", pa.int16()), ("calls", pa.int64()), ("total_ns", pa.int64()),
        ("min_ns", pa.int64()), ("max_ns", pa.int64()), ("hist", pa.list_(pa.int64())),
    ]),
    "memory_summary": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("op_id", pa.int64()),
        ("allocs", pa.int64()), ("alloc_bytes", pa.int64()), ("frees", pa.int64()),
        ("freed_bytes", pa.int64()), ("peak_in_use", pa.int64()),
    ]),
    "devices": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("world_size", pa.int32()),
        ("kind", pa.int32()), ("init_ns", pa.int64()),
    ]),
}

# pyarrow imports pandas the first time it converts a numpy array; do it now,
# not in the middle of a run, when a stalled drain would overflow the ring.
pa.array(np.zeros(1, np.int64))

# Index = collective kind code; the last entry names any code not in COMM_KINDS.
_COMM_KIND_NAMES = np.array(
    [ev.COMM_KINDS.get(i, "unknown") for i in range(max(ev.COMM_KINDS) + 1)] + ["unknown"],
    dtype=object)


class RankMap:
    """pid -> rank, learnt from device_init records."""

    def __init__(self):
        self._pids = np.empty(0, np.int64)
        self._ranks = np.empty(0, np.int32)

    def add(self, pid: int, rank: int) -> None:
        self._pids = np.append(self._pids, pid)
        self._ranks = np.append(self._ranks, np.int32(rank))
        order = np.argsort(self._pids, kind="stable")
        self._pids, self._ranks = self._pids[order], self._ranks[order]

    def lookup(self, pids: np.ndarray) -> np.ndarray:
        if len(self._pids) == 0:
            return np.full(len(pids), -1, np.int32)
        i = np.searchsorted(self._pids, pids)
        i = np.minimum(i, len(self._pids) - 1)
        found = self._pids[i] == pids
        return np.where(found, self._ranks[i], -1).astype(np.int32)


def _cstr(column: np.ndarray) -> list[str]:
    return [b.decode("utf-8", "replace") for b in column]


def decode_meta(meta: np.ndarray, ranks: RankMap) -> dict[str, pa.Table]:
    """device_init and op_register records -> devices and ops rows."""
    out = {}
    inits = meta[meta["type"] == ev.DEVICE_INIT]
    for rec in inits:
        ranks.add(int(rec["pid"]), int(rec["a0"]))
    if len(inits):
        out["devices"] = pa.Table.from_arrays([
            pa.array(inits["a0"].astype(np.int32)), pa.array(inits["pid"].astype(np.int32)),
            pa.array(inits["a1"].astype(np.int32)), pa.array(inits["a2"].astype(np.int32)),
            pa.array(inits["ts"].astype(np.int64)),
        ], schema=SCHEMAS["devices"])
    regs = meta[meta["type"] == ev.OP_REGISTER]
    if len(regs):
        out["ops"] = pa.Table.from_arrays([
            pa.array(ranks.lookup(regs["pid"].astype(np.int64))),
            pa.array(regs["a0"]), pa.array(regs["a1"]),
            pa.array(_cstr(regs["name"])), pa.array(_cstr(regs["optype"])),
            pa.array(_cstr(regs["scope"])),
            pa.array(regs["a2"]), pa.array(regs["a3"]),
        ], schema=SCHEMAS["ops"])
    return out


def decode_events(recs: np.ndarray, ranks: RankMap) -> dict[str, pa.Table]:
    """Hot-path records -> kernels, memory, comms, steps, cpu_waits and blocked rows."""
    out = {}
    if len(recs) == 0:
        return out
    # Plain contiguous columns first: arrow copies a strided field view one
    # element at a time, and fancy-indexing the structured array is slower still.
    col = {name: np.ascontiguousarray(recs[name]) for name in recs.dtype.names}
    types = col["type"]
    col["rank"] = ranks.lookup(col["pid"].astype(np.int64))
    col["pid"] = col["pid"].astype(np.int32)
    col["tid"] = col["tid"].astype(np.int32)
    col["ts"] = col["ts"].astype(np.int64)

    def rows(mask):
        if mask.all():
            return lambda name: col[name]
        idx = np.flatnonzero(mask)
        return (lambda name: col[name][idx]) if len(idx) else None

    def table(name, arrays):
        return pa.Table.from_arrays([pa.array(a) for a in arrays], schema=SCHEMAS[name])

    parts = []
    r = rows(types == ev.KERNEL)
    if r:
        dur = r("ts") - r("a2")
        parts.append(table("kernels", [
            r("rank"), r("pid"), r("tid"), r("a0"), r("sub").astype(np.int16),
            r("seq").astype(np.int64), r("a3"), r("a1"), r("a2"), dur, dur,
            np.zeros(len(dur), np.int16)]))
    # A framework's operator scope (docs/FORMAT.md): its kernel row's
    # duration is its self time, so that kernel time adds up without
    # counting a nested operator twice; total_ns is the whole scope.  No
    # launch queue on a CPU: launched when begun.
    r = rows(types == ev.CPU_OP)
    if r:
        parts.append(table("kernels", [
            r("rank"), r("pid"), r("tid"), r("a0"), r("sub").astype(np.int16),
            np.zeros(len(r("a0")), np.int64), r("a3"), r("a2"), r("a2"),
            np.maximum(r("a1"), 0), r("ts") - r("a2"), r("seq").astype(np.int16)]))
    if parts:
        out["kernels"] = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    is_free = types == ev.MEM_FREE
    r = rows((types == ev.MEM_ALLOC) | is_free)
    if r:
        sign = np.where(r("type") == ev.MEM_FREE, -1, 1)
        out["memory"] = table("memory", [
            r("rank"), r("pid"), r("ts"), r("a0"), r("a1") * sign, r("a2"), r("a3")])
    r = rows(types == ev.COMM)
    if r:
        kinds = r("sub").astype(np.int64)
        names = _COMM_KIND_NAMES[np.minimum(kinds, len(_COMM_KIND_NAMES) - 1)]
        packed = r("a2")
        peer = (packed & 0xFFFFFFFF).astype(np.uint32).view(np.int32).astype(np.int64)
        out["comms"] = pa.Table.from_arrays([
            pa.array(r("rank")), pa.array(r("pid")), pa.array(r("tid")),
            pa.array(names.tolist(), pa.string()), pa.array(r("a1")), pa.array(packed >> 32),
            pa.array(peer), pa.array(r("seq").astype(np.int64)), pa.array(r("a3")),
            pa.array(r("a0")), pa.array(r("ts") - r("a0"))], schema=SCHEMAS["comms"])
    r = rows(types == ev.STEP)
    if r:
        out["steps"] = table("steps", [r("rank"), r("pid"), r("a3"), r("a0"), r("ts") - r("a0"),
                                       r("a1")])
    r = rows(types == ev.CPU_WAIT)
    if r:
        out["cpu_waits"] = table("cpu_waits", [r("rank"), r("pid"), r("tid"), r("a0"),
                                               r("ts") - r("a0"), r("a1").astype(np.int32),
                                               r("sub") != 0, r("a2").astype(np.int32)])
    r = rows(types == ev.BLOCKED)
    if r:
        out["blocked"] = table("blocked", [r("rank"), r("pid"), r("tid"), r("a0"),
                                           r("ts") - r("a0")])
    return out


def decode_cpu_time(rows: np.ndarray, ranks: RankMap) -> dict[str, pa.Table]:
    """The eBPF backend's per-thread, per-CPU time (pid, tid, cpu, ns
    records) -> cpu_time rows, by rank, thread and CPU."""
    if len(rows) == 0:
        return {}
    rows = np.sort(rows, order=["pid", "tid", "cpu"])
    rank = ranks.lookup(rows["pid"].astype(np.int64))
    return {"cpu_time": pa.Table.from_arrays(
        [pa.array(rank), pa.array(rows["pid"]), pa.array(rows["tid"]),
         pa.array(rows["cpu"]), pa.array(rows["ns"])], schema=SCHEMAS["cpu_time"])}


def exited_pids(recs: np.ndarray) -> list[tuple[int, int, int | None]]:
    """(pid, ts, exit status) of EXIT records; the status is 128+N for a
    process killed by signal N, None where the backend could not tell."""
    out = []
    for rec in recs[recs["type"] == ev.EXIT]:
        code, sig = int(rec["a0"]), int(rec["a1"])
        status = code if code >= 0 else (128 + sig if sig > 0 else None)
        out.append((int(rec["pid"]), int(rec["ts"]), status))
    return out


def forked_pids(meta: np.ndarray) -> list[int]:
    f = meta[meta["type"] == ev.PROCESS_FORK]
    return [int(x) for x in f["a0"]]
