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
        ("dur_ns", pa.int64()),
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
        ("start_ns", pa.int64()), ("dur_ns", pa.int64()),
    ]),
    "devices": pa.schema([
        ("rank", pa.int32()), ("pid", pa.int32()), ("world_size", pa.int32()),
        ("kind", pa.int32()), ("init_ns", pa.int64()),
    ]),
}

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
    """Hot-path records -> kernels, memory, comms and steps rows."""
    out = {}
    if len(recs) == 0:
        return out
    types = recs["type"]
    pid64 = recs["pid"].astype(np.int64)
    rank = ranks.lookup(pid64)
    pid = recs["pid"].astype(np.int32)
    ts = recs["ts"].astype(np.int64)

    def pick(code):
        return np.flatnonzero(types == code)

    k = pick(ev.KERNEL)
    if len(k):
        r = recs[k]
        out["kernels"] = pa.Table.from_arrays([
            pa.array(rank[k]), pa.array(pid[k]), pa.array(r["tid"].astype(np.int32)),
            pa.array(r["a0"]), pa.array(r["sub"].astype(np.int16)),
            pa.array(r["seq"].astype(np.int64)), pa.array(r["a3"]),
            pa.array(r["a1"]), pa.array(r["a2"]), pa.array(ts[k] - r["a2"]),
        ], schema=SCHEMAS["kernels"])
    m = np.flatnonzero((types == ev.MEM_ALLOC) | (types == ev.MEM_FREE))
    if len(m):
        r = recs[m]
        sign = np.where(r["type"] == ev.MEM_FREE, -1, 1)
        out["memory"] = pa.Table.from_arrays([
            pa.array(rank[m]), pa.array(pid[m]), pa.array(ts[m]), pa.array(r["a0"]),
            pa.array(r["a1"] * sign), pa.array(r["a2"]), pa.array(r["a3"]),
        ], schema=SCHEMAS["memory"])
    c = pick(ev.COMM)
    if len(c):
        r = recs[c]
        kinds = r["sub"].astype(np.int64)
        names = _COMM_KIND_NAMES[np.minimum(kinds, len(_COMM_KIND_NAMES) - 1)]
        packed = r["a2"]
        out["comms"] = pa.Table.from_arrays([
            pa.array(rank[c]), pa.array(pid[c]), pa.array(r["tid"].astype(np.int32)),
            pa.array(names.tolist(), pa.string()), pa.array(r["a1"]),
            pa.array(packed >> 32), pa.array((packed & 0xFFFFFFFF).astype(np.uint32).view(np.int32).astype(np.int64)),
            pa.array(r["seq"].astype(np.int64)), pa.array(r["a3"]),
            pa.array(r["a0"]), pa.array(ts[c] - r["a0"]),
        ], schema=SCHEMAS["comms"])
    s = pick(ev.STEP)
    if len(s):
        r = recs[s]
        out["steps"] = pa.Table.from_arrays([
            pa.array(rank[s]), pa.array(pid[s]), pa.array(r["a3"]),
            pa.array(r["a0"]), pa.array(ts[s] - r["a0"]),
        ], schema=SCHEMAS["steps"])
    return out


def exited_pids(recs: np.ndarray) -> list[tuple[int, int]]:
    """(pid, ts) of EXIT records."""
    e = recs[recs["type"] == ev.EXIT]
    return [(int(p), int(t)) for p, t in zip(e["pid"], e["ts"])]


def forked_pids(meta: np.ndarray) -> list[int]:
    f = meta[meta["type"] == ev.PROCESS_FORK]
    return [int(x) for x in f["a0"]]
