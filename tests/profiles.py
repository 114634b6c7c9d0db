"""Synthetic profile directories whose right answers are known by
construction, written exactly as docs/FORMAT.md describes (meta.json and
zstd Parquet tables with the documented schema).

``write_profile`` writes any rows; ``reference`` and ``clean`` are the two
scenarios the analysis and CLI tests share (their expected numbers are
worked out in the docstrings).
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

i16, i32, i64, s = pa.int16(), pa.int32(), pa.int64(), pa.string()

SCHEMAS = {
    "kernels": [("rank", i32), ("pid", i32), ("tid", i32), ("op_id", i64), ("stream", i16),
                ("seq", i64), ("step", i64), ("launch_ns", i64), ("start_ns", i64),
                ("dur_ns", i64)],
    "ops": [("rank", i32), ("op_id", i64), ("graph_id", i64), ("name", s), ("type", s),
            ("scope", s), ("flops", i64), ("bytes", i64)],
    "memory": [("rank", i32), ("pid", i32), ("ts_ns", i64), ("addr", i64), ("size", i64),
               ("op_id", i64), ("in_use", i64)],
    "comms": [("rank", i32), ("pid", i32), ("tid", i32), ("kind", s), ("bytes", i64),
              ("group", i64), ("peer", i64), ("seq", i64), ("step", i64), ("start_ns", i64),
              ("dur_ns", i64)],
    "steps": [("rank", i32), ("pid", i32), ("step", i64), ("start_ns", i64), ("dur_ns", i64)],
    "devices": [("rank", i32), ("pid", i32), ("world_size", i32), ("kind", i32),
                ("init_ns", i64)],
}

DEFAULT_ROW = {"pid": 100, "tid": 100, "seq": 0, "graph_id": 0, "group": 0, "peer": -1,
               "step": -1, "kind": 0, "world_size": 2, "init_ns": 0, "addr": 0, "op_id": -1,
               "stream": 0}


def write_table(root: Path, name: str, rows: list[dict]) -> None:
    fields = SCHEMAS[name]
    cols = {f: [r.get(f, DEFAULT_ROW.get(f)) for r in rows] for f, _ in fields}
    table = pa.table({f: pa.array(cols[f], type=t) for f, t in fields})
    pq.write_table(table, root / f"{name}.parquet", compression="zstd")


def base_meta(ranks=(0, 1), **over) -> dict:
    meta = {
        "format_version": 1,
        "command": ["python", "train.py"],
        "backend": "inprocess",
        "mode": "trace",
        "host": "node0",
        "ranks": [{"rank": r, "pid": 100 + r, "host": "node0", "world_size": len(ranks)}
                  for r in ranks],
        "pids": [99] + [100 + r for r in ranks],
        "world_size": len(ranks),
        "clock": "CLOCK_MONOTONIC",
        "probes": ["kernel_launch", "kernel_begin", "kernel_end"],
        "lost_events": 0,
        "lost_by_cause": {},
        "events": 100,
        "start_ns": 0,
        "end_ns": 4000,
        "exit_status": 0,
        "failed_ranks": [],
        "tables": {},
        "complete": True,
    }
    meta.update(over)
    return meta


def write_profile(root, meta=None, **tables) -> Path:
    """Writes ``root``/meta.json and every table (rows as dicts; omitted
    tables are written empty, with their schema)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or base_meta())
    meta["tables"] = {t: len(tables.get(t, [])) for t in SCHEMAS}
    (root / "meta.json").write_text(json.dumps(meta, indent=1))
    for name in SCHEMAS:
        write_table(root, name, tables.get(name, []))
    return root


def _ops(rank):
    return [
        {"rank": rank, "op_id": 1, "name": "MatMul-op1", "type": "MatMul",
         "scope": "net/layer1/dense/MatMul-op1", "flops": 2_750_000, "bytes": 275_000},
        {"rank": rank, "op_id": 2, "name": "ReLU-op2", "type": "ReLU",
         "scope": "net/layer1/ReLU-op2", "flops": 0, "bytes": 8_000},
        {"rank": rank, "op_id": 3, "name": "AllReduce-op3", "type": "AllReduce",
         "scope": "net", "flops": 0, "bytes": 0},
    ]


def _k(rank, op, launch, start, dur, step, stream=0):
    return {"rank": rank, "pid": 100 + rank, "op_id": op, "launch_ns": launch,
            "start_ns": start, "dur_ns": dur, "step": step, "stream": stream}


REFERENCE_KERNELS = [
    # rank 0, step 0, window [1000, 2000)
    _k(0, 1, 1050, 1100, 200, 0),            # gap [1000,1100): host 50, queued 50
    _k(0, 2, 1400, 1400, 100, 0),            # gap [1300,1400): host 100
    _k(0, 1, 1450, 1500, 300, 0),            # touches the previous kernel
    _k(0, 3, 1500, 1600, 100, 0, stream=1),  # inside the previous one (comm stream)
    # tail [1800,2000): idle 200
    # rank 0, step 1, window [2000, 3000)
    _k(0, 1, 1900, 2000, 400, 0),            # launched in step 0, runs in step 1
    _k(0, 2, 2100, 2600, 100, 1),            # gap [2400,2600): queued 200
    # tail [2700,3000): idle 300
    _k(0, 2, 100, 100, 50, -1),              # outside any step
    # rank 1, step 0: a long host-bound gap; step 1: no kernel at all
    _k(1, 1, 1000, 1000, 200, 0),
    _k(1, 2, 1900, 1900, 100, 0),            # gap [1200,1900): host 700
]


def reference(root) -> Path:
    """Two ranks, two steps of 1000 ns each per rank (windows [1000,2000)
    and [2000,3000)).

    Per-operator (all ranks): MatMul-op1 durations 200,300,400 (rank 0) and
    200 (rank 1): calls 4, total 1100, mean 275, p50 250, p99 397, share
    1100/1550, 2.75e6 FLOPs and 275e3 bytes per call -> 10000 GFLOP/s and
    1000 GB/s; in-step time 1100 over 4 rank-steps -> 275 ns/step.
    ReLU-op2: 100,100,50 (rank 0, the 50 outside any step) and 100 (rank
    1): calls 4, total 350, mean 87.5, p50 100; in-step 300.  AllReduce-op3:
    one call of 100.  Kernel time 1550.

    Breakdown (busy, host gap, idle, queued):
      rank 0 step 0: 600, 150, 250, 50    step 1: 500, 0, 500, 200
      rank 1 step 0: 300, 700, 0, 0       step 1: 0, 0, 1000, 0
    Memory peaks: rank 0 step 0 1500, step 1 4000 (overall 4000); rank 1
    2048 carried in from before its steps.  comm_ns: rank 0 step 0 100.
    """
    steps = [{"rank": r, "pid": 100 + r, "step": st, "start_ns": 1000 + 1000 * st, "dur_ns": 1000}
             for r in (0, 1) for st in (0, 1)]
    memory = [
        {"rank": 0, "ts_ns": 500, "size": 1000, "in_use": 1000},
        {"rank": 0, "ts_ns": 1200, "size": 500, "in_use": 1500},
        {"rank": 0, "ts_ns": 1900, "size": -500, "in_use": 1000},
        {"rank": 0, "ts_ns": 2500, "size": 3000, "in_use": 4000},
        {"rank": 0, "ts_ns": 2800, "size": -3000, "in_use": 1000},
        {"rank": 1, "ts_ns": 900, "size": 2048, "in_use": 2048},
    ]
    comms = [{"rank": 0, "kind": "allreduce", "bytes": 4096, "seq": 0, "step": 0,
              "start_ns": 1600, "dur_ns": 100}]
    devices = [{"rank": r, "pid": 100 + r, "world_size": 2} for r in (0, 1)]
    return write_profile(root, base_meta(), kernels=REFERENCE_KERNELS, ops=_ops(0) + _ops(1),
                         steps=steps, memory=memory, comms=comms, devices=devices)


def clean(root, ranks=(0, 1)) -> Path:
    """A healthy run: each rank's 3 steps of 1000 ns are filled by 5
    kernels of 200 ns (two operators alternating), all launched well ahead.
    Busy 1000 per step, no gaps, no alarming finding."""
    kernels, steps = [], []
    for r in ranks:
        for st in range(3):
            t0 = 1000 * (st + 1)
            steps.append({"rank": r, "step": st, "start_ns": t0, "dur_ns": 1000})
            for i in range(5):
                kernels.append(_k(r, 1 + i % 2, t0 - 500, t0 + 200 * i, 200, st))
    ops = [o for r in ranks for o in _ops(r)[:2]]
    return write_profile(root, base_meta(ranks), kernels=kernels, ops=ops, steps=steps)


# Fixtures over these scenarios; test modules import them by name.

import pytest  # noqa: E402

import msprof  # noqa: E402


@pytest.fixture
def ref_dir(tmp_path):
    """The ``reference`` profile directory, written afresh."""
    return reference(tmp_path / "ref")


@pytest.fixture
def ref(ref_dir):
    """The ``reference`` profile, loaded."""
    return msprof.load(ref_dir)


@pytest.fixture
def clean_profile(tmp_path):
    """The ``clean`` profile, loaded."""
    return msprof.load(clean(tmp_path / "clean"))
