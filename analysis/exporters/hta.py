"""Per-rank trace files for Holistic Trace Analysis (HTA).

HTA reads PyTorch-profiler (Kineto) traces: one JSON file per rank in a
directory.  What its parser relies on, and what this writes:

* the rank, from the first line matching ``"rank": N`` -- so the document
  opens with ``"distributedInfo": {"rank": N, ...}`` (key, colon, space);
* events with ``dur`` and ``cat`` (others are dropped);
* GPU kernels: ``cat`` "kernel", ``args.stream`` (>= 0) and
  ``args.correlation``; msprof's stream s becomes stream 7 + s, because HTA
  treats stream 0 as neither host nor device when it numbers iterations;
* for every kernel, a host ``cudaLaunchKernel`` event (``cat``
  "cuda_runtime", no stream) with the same correlation id at the launch time
  (the kernel's start where the launch is unknown): HTA keeps only kernels
  whose launch it sees inside the profiled steps;
* ``ProfilerStep#N`` host slices for the steps;
* communication kernels named like NCCL's (``ncclKernel_AllReduce_...``),
  which is how HTA tells communication from computation.

HTA rounds fractional-microsecond timestamps (start up, end down), so
kernels much shorter than a microsecond lose accuracy there.

A summary-mode profile is refused: it has no kernel timeline, and HTA's
analyses (temporal breakdown, overlap, idle time) would read the missing
kernels as an idle device.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from msprof.analysis.exporters.chrome import (
    _Writer, ints, join, op_lookup, read_batches, take_op, us,
)
from msprof.analysis.exporters.tables import table_paths
from msprof.analysis.flame import COMM, op_class
from msprof.errors import MsprofError

STREAM_BASE = 7
LAUNCH_NS = 1000  # width given to the synthetic launch events


def kernel_name(op_type: str, name: str, stream: int = 0) -> str:
    """The name HTA sees: NCCL-like for communication ops, else the op name."""
    if op_class(op_type or "", stream) == COMM:
        kind = (op_type or "Comm").replace(" ", "")
        return f"ncclKernel_{kind}_{name}"
    return name


def _part(row) -> str:
    if row is None:
        return '"name":"unregistered_op","cat":"kernel","args":{"op_id":-1'
    args = {"op_type": row.type, "scope": row.scope, "op_id": int(row.op_id)}
    return (f'"name":{json.dumps(kernel_name(row.type, row.name))},"cat":"kernel","args":'
            + json.dumps(args, separators=(",", ":"))[:-1])


def _comm_part(row) -> str:
    if row is None:
        return '"name":"ncclKernel_Comm_unregistered","cat":"kernel","args":{"op_id":-1'
    args = {"op_type": row.type, "scope": row.scope, "op_id": int(row.op_id)}
    name = f"ncclKernel_{(row.type or 'Comm').replace(' ', '')}_{row.name}"
    return (f'"name":{json.dumps(name)},"cat":"kernel","args":'
            + json.dumps(args, separators=(",", ":"))[:-1])


def export(profile, out: Path) -> list[Path]:
    """Writes ``out``/rank<N>.trace.json for every rank; returns the files."""
    if profile.summary_mode:
        raise MsprofError("an HTA export needs a trace-mode profile (this one is summary "
                          "mode: no kernel timeline; record with --mode trace)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = table_paths(profile)
    world = int(profile.meta.get("world_size") or len(profile.ranks))
    pids = {r.get("rank"): r.get("pid") for r in profile.meta.get("ranks") or []
            if isinstance(r, dict)}
    ranks = [r for r in profile.ranks if r >= 0]
    files, writers = {}, {}
    try:
        for r in ranks:
            path = out / f"rank{r}.trace.json"
            f = open(path, "wb")
            files[r] = (path, f)
            head = {"distributedInfo": {"rank": r, "world_size": world, "backend": "nccl"}}
            # json.dumps writes '"rank": N' (with the space HTA's rank regex needs)
            f.write(b"{" + json.dumps(head)[1:-1].encode() + b",\n")
            f.write(b'"schemaVersion": 1, "displayTimeUnit": "ns", '
                    b'"deviceProperties": [{"id": ' + str(r).encode()
                    + b', "name": "msprof device"}],\n"traceEvents": [\n')
            w = writers[r] = _Writer(f)
            hpid = int(pids.get(r) or 100000 + r)
            w.event({"ph": "M", "name": "process_name", "pid": hpid, "tid": 0,
                     "args": {"name": f"rank {r} host"}})
            w.event({"ph": "M", "name": "process_name", "pid": r, "tid": 0,
                     "args": {"name": f"device {r}"}})
        _steps(writers, paths["steps"], pids)
        _kernels(writers, paths["kernels"], profile.ops, pids)
        for r, (path, f) in files.items():
            f.write(b"\n]}\n")
    finally:
        for _, f in files.values():
            f.close()
    return [p for p, _ in files.values()]


def _steps(writers, paths, pids) -> None:
    for df in read_batches(paths, ["rank", "step", "start_ns", "dur_ns"]):
        for r, g in df.groupby("rank"):
            if r not in writers:
                continue
            hp = str(int(pids.get(int(r)) or 100000 + int(r)))
            step = ints(g["step"])
            writers[r].many(join(',\n{"ph":"X","cat":"user_annotation","name":"ProfilerStep#', step,
                                 '","pid":', hp, ',"tid":', hp, ',"ts":', us(g["start_ns"]),
                                 ',"dur":', us(g["dur_ns"]), ',"args":{"step":', step, "}}"))


def _kernels(writers, paths, ops: pd.DataFrame, pids) -> None:
    idx, parts = op_lookup(ops, _part)
    _, comm_parts = op_lookup(ops, _comm_part)
    corr = {r: 0 for r in writers}
    cols = ["rank", "op_id", "stream", "step", "launch_ns", "start_ns", "dur_ns"]
    for df in read_batches(paths, cols):
        for r, g in df.groupby("rank"):
            if r not in writers:
                continue
            n = len(g)
            c = ints(np.arange(corr[r] + 1, corr[r] + n + 1))
            corr[r] += n
            hp = str(int(pids.get(int(r)) or 100000 + int(r)))
            start = g["start_ns"].to_numpy()
            launch = g["launch_ns"].to_numpy()
            launch = np.where((launch > 0) & (launch <= start), launch, start)
            stream = g["stream"].to_numpy()
            named = take_op(idx, parts, g["rank"], g["op_id"])
            comm_named = take_op(idx, comm_parts, g["rank"], g["op_id"])
            named = pc.if_else(pa.array(stream != 0), comm_named, named)
            sid = ints(stream + STREAM_BASE)
            launches = join(',\n{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":',
                            hp, ',"tid":', hp, ',"ts":', us(launch), ',"dur":',
                            us(np.full(n, LAUNCH_NS)), ',"args":{"correlation":', c,
                            ',"External id":', c, "}}")
            kernels = join(',\n{"ph":"X","pid":', str(int(r)), ',"tid":', sid, ',"ts":',
                           us(start), ',"dur":', us(g["dur_ns"]), ",", named,
                           ',"device":', str(int(r)), ',"stream":', sid, ',"correlation":', c,
                           ',"External id":', c, ',"step":', ints(g["step"]), "}}")
            writers[r].many(launches)
            writers[r].many(kernels)
