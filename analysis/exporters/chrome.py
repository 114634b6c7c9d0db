"""Chrome trace-event JSON (opens in Perfetto UI and chrome://tracing).

One process per rank (``pid`` = rank + 1, named ``rank N``), one thread per
device stream (compute, communication), a ``steps`` thread with one slice
per training step, a ``collectives`` thread with the ``comms`` table (kind,
bytes, peer, seq), the pool's bytes in use as a counter track, and each
time a runtime thread waited for a busy CPU as an async slice ``waiting
for a CPU`` (they overlap across threads; ``args``: the thread, the CPU,
the process that held it).  Kernel slices carry the op's metadata in
``args``.  Of a summary-mode profile (no kernel or pool timeline) the
trace holds what was recorded one by one: steps, collectives, CPU waits.

The file is streamed: every table is read in record batches and each batch
is formatted into JSON with Arrow string kernels (no Python object per
event), so memory stays bounded whatever the number of events.  Times are
microseconds with three decimals, i.e. exact nanoseconds.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Iterator, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from msprof.analysis.exporters.tables import table_paths
from msprof.analysis.load import iter_batches
from msprof.analysis.flame import op_class

BATCH_ROWS = 1 << 18
STEPS_TID = 1
COLLECTIVES_TID = 2
CPU_WAITS_TID = 3
STREAM_TID0 = 10  # stream s is thread STREAM_TID0 + s
UNKNOWN_RANK_PID = 1 << 20


def pid_of(rank):
    """Trace pid of a rank (numpy or int): rank + 1; an undeclared rank (-1)
    gets its own process."""
    return np.where(np.asarray(rank) >= 0, np.asarray(rank) + 1, UNKNOWN_RANK_PID)


def stream_name(stream: int) -> str:
    return {0: "compute stream", 1: "communication stream"}.get(stream, f"stream {stream}")


def us(ns) -> pa.Array:
    """Nanoseconds (int array) as exact microsecond decimals: 1234 -> "1.234"."""
    ns = np.asarray(ns, dtype=np.int64)
    neg = ns < 0
    a = np.abs(ns)
    whole = pa.array(a // 1000).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(a % 1000).cast(pa.string()), width=3, padding="0")
    s = pc.binary_join_element_wise(whole, frac, ".")
    if neg.any():
        s = pc.if_else(pa.array(neg), pc.binary_join_element_wise("-", s, ""), s)
    return s


def ints(x) -> pa.Array:
    return pa.array(np.asarray(x, dtype=np.int64)).cast(pa.string())


def join(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays and literal strings."""
    args = [pa.scalar(p) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, "")


def write_strings(f: IO[bytes], arr: pa.Array) -> None:
    """Writes the strings of ``arr`` back to back, straight from Arrow's buffer."""
    if len(arr) == 0:
        return
    arr = arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    if isinstance(arr, pa.ChunkedArray):
        for c in arr.chunks:
            write_strings(f, c)
        return
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    f.write(memoryview(data)[offsets[0]: offsets[-1]])


def read_batches(paths: list[Path], columns: list[str]) -> Iterator[pd.DataFrame]:
    """The rows of a table's files, a bounded batch at a time, as DataFrames
    of the ``columns`` the file has (absent ones filled with -1)."""
    for path in paths:
        # table_paths names each file after its table: <table>.parquet
        for b in iter_batches(path.stem, path, columns=columns, batch_size=BATCH_ROWS):
            df = b.to_pandas()
            for c in columns:
                if c not in df.columns:
                    df[c] = -1
            yield df


def op_lookup(ops: pd.DataFrame, part) -> tuple[pd.MultiIndex, pa.Array]:
    """(rank, op_id) index and a per-op string built by ``part(row)``, with
    one extra entry (last) for kernels of unregistered ops."""
    ops = ops.drop_duplicates(["rank", "op_id"], keep="last")
    idx = pd.MultiIndex.from_arrays([ops["rank"].astype("int64"), ops["op_id"].astype("int64")])
    strings = [part(r) for r in ops.itertuples(index=False)] + [part(None)]
    return idx, pa.array(strings, type=pa.string())


def take_op(idx: pd.MultiIndex, strings: pa.Array, rank, op_id) -> pa.Array:
    pos = idx.get_indexer(pd.MultiIndex.from_arrays(
        [np.asarray(rank, dtype=np.int64), np.asarray(op_id, dtype=np.int64)]))
    pos = np.where(pos < 0, len(strings) - 1, pos)
    return strings.take(pa.array(pos))


def _kernel_part(row) -> str:
    if row is None:
        return '"name":"(unregistered op)","cat":"other","args":{"op_id":-1'
    cls = op_class(row.type)
    args = {"op": row.name, "type": row.type, "scope": row.scope, "op_id": int(row.op_id),
            "graph_id": int(row.graph_id), "flops": int(row.flops), "bytes": int(row.bytes)}
    return (f'"name":{json.dumps(row.name)},"cat":"{cls}","args":'
            + json.dumps(args, separators=(",", ":"))[:-1])


class _Writer:
    """Trace events, comma-separated, into a JSON document's traceEvents."""

    def __init__(self, f: IO[bytes]):
        self.f = f
        self.first = True
        self.count = 0

    def event(self, ev: dict) -> None:
        self.f.write((("" if self.first else ",\n") + json.dumps(ev, separators=(",", ":")))
                     .encode())
        self.first = False
        self.count += 1

    def many(self, arr: pa.Array) -> None:
        """Events already formatted, each starting with ',\\n'."""
        if len(arr) == 0:
            return
        if self.first:
            self.event({"ph": "M", "name": "trace_start", "pid": 0, "tid": 0, "args": {}})
        write_strings(self.f, arr)
        self.count += len(arr)


def export(profile, out: Path, ranks: Optional[list[int]] = None) -> Path:
    """Writes the Chrome trace of ``profile`` to ``out`` (a .json file);
    returns its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = table_paths(profile)
    meta = profile.meta
    with open(out, "wb") as f:
        other = {k: meta.get(k) for k in ("command", "host", "backend", "mode", "world_size",
                                           "clock", "lost_events", "format_version")}
        f.write(b'{"displayTimeUnit":"ns","otherData":'
                + json.dumps(other, separators=(",", ":")).encode()
                + b',"traceEvents":[\n')
        w = _Writer(f)
        _metadata(w, profile)
        _kernels(w, paths["kernels"], profile.ops)
        _steps(w, paths["steps"])
        _comms(w, paths["comms"])
        _memory(w, paths["memory"])
        _cpu_waits(w, paths["cpu_waits"])
        if w.first:
            w.event({"ph": "M", "name": "trace_start", "pid": 0, "tid": 0, "args": {}})
        f.write(b"\n]}\n")
    return out


def _metadata(w: _Writer, profile) -> None:
    hosts = {r.get("rank"): r.get("host") for r in profile.meta.get("ranks") or []
             if isinstance(r, dict)}
    k = profile.kernels[["rank", "stream"]] if _small(profile) else None
    ranks = sorted(set(profile.ranks))
    streams: dict[int, set] = {}
    if k is not None:
        for r, s in k.drop_duplicates().itertuples(index=False):
            streams.setdefault(int(r), set()).add(int(s))
            ranks = sorted(set(ranks) | {int(r)})
    for r in ranks:
        pid = int(pid_of(r))
        name = f"rank {r}" + (f" ({hosts[r]})" if hosts.get(r) else "") if r >= 0 else "no rank"
        w.event({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})
        w.event({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                 "args": {"sort_index": max(r, 0)}})
        threads = [(STEPS_TID, "steps"), (COLLECTIVES_TID, "collectives")]
        threads += [(STREAM_TID0 + s, stream_name(s)) for s in sorted(streams.get(r, {0, 1}))]
        for tid, tname in threads:
            w.event({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                     "args": {"name": tname}})
            w.event({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                     "args": {"sort_index": tid}})


def _small(profile) -> bool:
    """Stream names come from the kernels table when it is small enough to
    read whole; otherwise streams 0 and 1 are named."""
    return int((profile.meta.get("tables") or {}).get("kernels", 0)) <= 2_000_000


def _kernels(w: _Writer, paths, ops: pd.DataFrame) -> None:
    idx, parts = op_lookup(ops, _kernel_part)
    cols = ["rank", "op_id", "stream", "step", "launch_ns", "start_ns", "dur_ns", "seq"]
    for df in read_batches(paths, cols):
        launch = df["launch_ns"].to_numpy()
        start = df["start_ns"].to_numpy()
        delay = np.where(launch > 0, start - launch, -1)
        w.many(join(',\n{"ph":"X","pid":', ints(pid_of(df["rank"].to_numpy())),
                    ',"tid":', ints(df["stream"].to_numpy() + STREAM_TID0),
                    ',"ts":', us(start), ',"dur":', us(df["dur_ns"].to_numpy()), ",",
                    take_op(idx, parts, df["rank"], df["op_id"]),
                    ',"step":', ints(df["step"]), ',"seq":', ints(df["seq"]),
                    ',"launch_delay_ns":', ints(delay), "}}"))


def _steps(w: _Writer, paths) -> None:
    for df in read_batches(paths, ["rank", "step", "start_ns", "dur_ns"]):
        step = ints(df["step"])
        w.many(join(',\n{"ph":"X","cat":"step","name":"step ', step, '","pid":',
                    ints(pid_of(df["rank"].to_numpy())), ',"tid":', str(STEPS_TID),
                    ',"ts":', us(df["start_ns"]), ',"dur":', us(df["dur_ns"]),
                    ',"args":{"step":', step, "}}"))


def _comms(w: _Writer, paths) -> None:
    cols = ["rank", "kind", "bytes", "group", "peer", "seq", "step", "start_ns", "dur_ns"]
    for df in read_batches(paths, cols):
        kind = pa.array(df["kind"].astype(str).map(json.dumps).to_numpy(), type=pa.string())
        w.many(join(',\n{"ph":"X","cat":"communication","name":', kind, ',"pid":',
                    ints(pid_of(df["rank"].to_numpy())), ',"tid":', str(COLLECTIVES_TID),
                    ',"ts":', us(df["start_ns"]), ',"dur":', us(df["dur_ns"]),
                    ',"args":{"bytes":', ints(df["bytes"]), ',"peer":', ints(df["peer"]),
                    ',"seq":', ints(df["seq"]), ',"group":', ints(df["group"]),
                    ',"step":', ints(df["step"]), "}}"))


def _memory(w: _Writer, paths) -> None:
    for df in read_batches(paths, ["rank", "ts_ns", "in_use"]):
        w.many(join(',\n{"ph":"C","name":"memory in use","pid":',
                    ints(pid_of(df["rank"].to_numpy())), ',"tid":0,"ts":', us(df["ts_ns"]),
                    ',"args":{"bytes":', ints(df["in_use"]), "}}"))


def _cpu_waits(w: _Writer, paths) -> None:
    cols = ["rank", "tid", "start_ns", "dur_ns", "cpu", "idle_cpu", "holder_pid"]
    first = 0
    for df in read_batches(paths, cols):
        df = df[~df["idle_cpu"].astype(bool)]     # an idle CPU waking up: no competition
        ids = ints(np.arange(first, first + len(df)))
        first += len(df)
        head = join(',\n{"cat":"cpu_wait","name":"waiting for a CPU","id":', ids,
                    ',"pid":', ints(pid_of(df["rank"].to_numpy())),
                    ',"tid":', str(CPU_WAITS_TID))
        start = df["start_ns"].to_numpy()
        w.many(join(head, ',"ph":"b","ts":', us(start), ',"args":{"thread":', ints(df["tid"]),
                    ',"cpu":', ints(df["cpu"]), ',"held_by_pid":', ints(df["holder_pid"]),
                    "}}"))
        w.many(join(head, ',"ph":"e","ts":', us(start + df["dur_ns"].to_numpy()), "}"))
