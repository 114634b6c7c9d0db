"""Synthetic profile directories whose right answers are known by
construction, written exactly as docs/FORMAT.md describes (meta.json and
zstd Parquet tables with the documented schema).

``write_profile`` writes any rows; ``reference`` and ``clean`` are the two
scenarios the analysis and CLI tests share (their expected numbers are
worked out in the docstrings).  ``summary_reference`` is ``reference``
recorded in summary mode; ``as_summary`` turns any trace-mode directory
into the summary-mode one the same run would have written.
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
    "steps": [("rank", i32), ("pid", i32), ("step", i64), ("start_ns", i64), ("dur_ns", i64),
              ("samples", i64)],
    "devices": [("rank", i32), ("pid", i32), ("world_size", i32), ("kind", i32),
                ("init_ns", i64)],
    "blocked": [("rank", i32), ("pid", i32), ("tid", i32), ("start_ns", i64), ("dur_ns", i64)],
    "cpu_time": [("rank", i32), ("pid", i32), ("tid", i32), ("cpu", i32), ("ns", i64)],
    "cpu_waits": [("rank", i32), ("pid", i32), ("tid", i32), ("start_ns", i64),
                  ("dur_ns", i64), ("cpu", i32), ("idle_cpu", pa.bool_()),
                  ("holder_pid", i32)],
    "kernel_summary": [("rank", i32), ("pid", i32), ("op_id", i64), ("stream", i16),
                       ("calls", i64), ("total_ns", i64), ("min_ns", i64), ("max_ns", i64),
                       ("hist", pa.list_(i64))],
    "memory_summary": [("rank", i32), ("pid", i32), ("op_id", i64), ("allocs", i64),
                       ("alloc_bytes", i64), ("frees", i64), ("freed_bytes", i64),
                       ("peak_in_use", i64)],
}

HIST_BUCKETS = 48   # docs/FORMAT.md, kernel_summary.hist

DEFAULT_ROW = {"pid": 100, "tid": 100, "seq": 0, "graph_id": 0, "group": 0, "peer": -1,
               "step": -1, "kind": 0, "world_size": 2, "init_ns": 0, "addr": 0, "op_id": -1,
               "stream": 0, "cpu": 0, "idle_cpu": False,
               "holder_pid": -1, "hist": [0] * HIST_BUCKETS, "samples": 0}


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


def _dp_ops(rank):
    return [
        {"rank": rank, "op_id": 1, "name": "MatMul-op1", "type": "MatMul",
         "scope": "net/dense/MatMul-op1", "flops": 6_000_000, "bytes": 600_000},
        {"rank": rank, "op_id": 2, "name": "MatMulGrad-op2", "type": "MatMulGrad",
         "scope": "Gradients/net/dense/MatMulGrad-op2", "flops": 8_000_000, "bytes": 800_000},
        {"rank": rank, "op_id": 4, "name": "BiasGrad-op4", "type": "BiasGrad",
         "scope": "Gradients/net/dense/BiasGrad-op4", "flops": 0, "bytes": 4_000},
        {"rank": rank, "op_id": 3, "name": "AllReduce-op3", "type": "AllReduce",
         "scope": "Gradients/AllReduce/AllReduce-op3", "flops": 0, "bytes": 1_000_000},
    ]


DP_BYTES = 1_000_000


def data_parallel(root, n=4, steps=3, slow_rank=None, slow_extra=2000, xfer=1000,
                  leak_rank=None, leak_bytes=256, gap=100) -> Path:
    """Data parallel over ``n`` ranks, ``steps`` steps, the first at 10 us,
    each next one 100 ns after the previous one's end (:func:`dp_step_start`:
    a training loop with no time between steps worth a finding).

    Each rank computes C = 4000 ns per step (``slow_rank``: C + slow_extra):
    forward MatMul-op1 [0, C-2000), MatMulGrad-op2 [C-2000,
    C-1000), BiasGrad-op4 [C-1000, C).  The gradient bucket's allreduce
    (AllReduce-op3, stream 1, DP_BYTES) is entered when MatMulGrad ends (C -
    1000): the last arrival is A = max(C) - 1000, the transfer takes
    ``xfer`` and every rank leaves at A + xfer, which ends the step window.
    All kernels are launched 100 ns before the step starts (no host gap).

    With the defaults and no slow rank: step 4000, compute 4000, comm
    [3000, 4000) fully overlapped, exposed 0, skew 0, algbw 1000 GB/s,
    busbw 1500 GB/s (n = 4).  With slow_rank s (C = 6000): step 6000;
    other ranks: compute 4000, comm [3000, 6000) = 3000 of which 1000
    overlapped and 2000 exposed, waiting [3000, 5000) (exposed part 1000:
    comm_wait_ns 1000); rank s: compute 6000, comm 1000 overlapped.  Skew
    2000 per instance.  Critical path: MatMul-op1 and MatMulGrad-op2 on
    rank s (5000), then the allreduce (1000).

    Memory: 10_000 bytes of parameters at t=0 (op -1, never freed); each
    step MatMul-op1 allocates 1000 bytes at its start, freed at C;
    ``leak_rank``'s BiasGrad-op4 also allocates ``leak_bytes`` per step,
    never freed.
    """
    kernels, comms, stp, memory, ops = [], [], [], [], []
    extra = slow_extra if slow_rank is not None else 0
    C = {r: 4000 + (slow_extra if r == slow_rank else 0) for r in range(n)}
    last = max(C.values()) - 1000
    for r in range(n):
        ops += _dp_ops(r)
        used = 10_000
        memory.append({"rank": r, "ts_ns": 0, "addr": 1 << 20, "size": 10_000, "op_id": -1,
                       "in_use": used})
        for st in range(steps):
            t0 = dp_step_start(st, extra, xfer, gap)
            end = t0 + last + xfer
            stp.append({"rank": r, "pid": 100 + r, "step": st, "start_ns": t0, "dur_ns": end - t0})
            c = C[r]
            for op, a, b in ((1, 0, c - 2000), (2, c - 2000, c - 1000), (4, c - 1000, c)):
                kernels.append(_k(r, op, t0 - 100, t0 + a, b - a, st))
            arrive = t0 + c - 1000
            kernels.append(_k(r, 3, t0 - 100, arrive, end - arrive, st, stream=1))
            comms.append({"rank": r, "pid": 100 + r, "kind": "allreduce", "bytes": DP_BYTES,
                          "seq": st, "step": st, "start_ns": arrive, "dur_ns": end - arrive})
            used += 1000
            memory.append({"rank": r, "ts_ns": t0, "addr": 4096, "size": 1000, "op_id": 1,
                           "in_use": used})
            if r == leak_rank:
                used += leak_bytes
                memory.append({"rank": r, "ts_ns": t0 + c - 500, "addr": 8192 + 512 * st,
                               "size": leak_bytes, "op_id": 4, "in_use": used})
            used -= 1000
            memory.append({"rank": r, "ts_ns": t0 + c, "addr": 4096, "size": -1000, "op_id": 1,
                           "in_use": used})
    devices = [{"rank": r, "pid": 100 + r, "world_size": n} for r in range(n)]
    meta = base_meta(tuple(range(n)), end_ns=dp_step_start(steps, extra, xfer, gap))
    return write_profile(root, meta, kernels=kernels, comms=comms, steps=stp, memory=memory,
                         ops=ops, devices=devices)


def dp_step_start(st: int, slow_extra: int = 0, xfer: int = 1000, gap: int = 100) -> int:
    """When step ``st`` of :func:`data_parallel` begins: 10 us, then every
    step of 4000 + ``slow_extra`` - 1000 + ``xfer`` ns plus ``gap`` between."""
    return 10_000 + st * (4000 + slow_extra - 1000 + xfer + gap)


def contended(root, n=4, steps=3, slow_extra=2000) -> Path:
    """:func:`data_parallel` with rank 2 computing 2000 ns longer per step
    only because its compute thread (tid 100, the thread of every kernel)
    waited 2000 ns per step for a CPU, in three waits at step offsets
    [500, 1500), [2500, 3300) and [5800, 6300): the last one runs past the
    rank's compute (which ends at 6000, with the step window) and counts
    200 (the three waited behind: rank 2's own threads, rank 0 and the
    collector, pid 98).  A thread that runs no kernel (tid 300, the host) waits [100,
    3000) every step: not compute's wait; and the compute thread's wait
    [3400, 3900) ended on an idle CPU (that CPU waking up): not
    contention.  Rank 0's compute thread waits [4500, 4700) every step,
    after its compute (which ends at 4000): 200 of cpu_wait_ns, none of
    it in compute, and below the finding's threshold.

    So rank 2: cpu_wait_ns 2000 per step, all of it in compute, compute
    6000 of which 4000 on a CPU, like the other ranks (no slow rank); CPU
    contention on rank 2 (steps 400 ns apart: the last wait ends before
    the next step), without it: the longest wait per step, 2000 (the
    others wait 1000 per step in collectives: less).  A larger
    ``slow_extra`` makes rank 2's kernels longer on a CPU too."""
    root = data_parallel(root, n=n, steps=steps, slow_rank=2, slow_extra=slow_extra, gap=400)
    waits = []
    for st in range(steps):
        t0 = dp_step_start(st, slow_extra, gap=400)
        for a, b, tid, idle, holder in ((500, 1500, 100, False, 102),
                                        (2500, 3300, 100, False, 100),
                                        (5800, 6300, 100, False, 98),
                                        (100, 3000, 300, False, 101),
                                        (3400, 3900, 100, True, 0)):
            waits.append({"rank": 2, "pid": 102, "tid": tid, "start_ns": t0 + a,
                          "dur_ns": b - a, "cpu": 1, "idle_cpu": idle, "holder_pid": holder})
        waits.append({"rank": 0, "pid": 100, "tid": 100, "start_ns": t0 + 4500, "dur_ns": 200,
                      "holder_pid": 777})
    write_table(root, "cpu_waits", waits)
    # rank 0's compute thread asleep [100, 600) of every step (inside
    # MatMul-op1, [0, 2000)) and rank 1's host thread (tid 200, no kernel)
    write_table(root, "blocked", [
        {"rank": r, "pid": 100 + r, "tid": tid, "start_ns": dp_step_start(st, slow_extra, gap=400) + 100,
         "dur_ns": 500} for st in range(steps) for r, tid in ((0, 100), (1, 200))])
    meta = json.loads((root / "meta.json").read_text())
    meta["collector_pid"] = 98
    meta["backend"] = "ebpf"        # the backend that sees waits for a CPU
    (root / "meta.json").write_text(json.dumps(meta, indent=1))
    return root


def _pp_ops(rank):
    return [
        {"rank": rank, "op_id": 1, "name": "Fwd-op1", "type": "MatMul", "scope": f"stage{rank}/Fwd-op1"},
        {"rank": rank, "op_id": 2, "name": "Bwd-op2", "type": "MatMulGrad", "scope": f"Gradients/stage{rank}/Bwd-op2"},
        {"rank": rank, "op_id": 5, "name": "Send-op5", "type": "Send", "scope": f"stage{rank}/Send-op5"},
        {"rank": rank, "op_id": 6, "name": "Recv-op6", "type": "Receive", "scope": f"stage{rank}/Recv-op6"},
    ]


def pipeline(root, steps=2) -> Path:
    """Two stages (ranks 0, 1), two micro-batches, GPipe; forward 1000 ns
    and backward 2000 ns per micro-batch and stage; messages of 1000 bytes
    take 100 ns.  Times within a step (t0 = 20 us + 9.3 us x step: 100 ns
    after rank 0's previous step; rank 1's step begins with rank 0's, as
    its first receive waits for rank 0's first forward):

      rank 0: F0 [0,1000) F1 [1000,2000) B1 [5200,7200) B0 [7200,9200);
              sends [1000,1100) [2000,2100); recvs of gradients posted at
              2000 -> [2000,5200) and 5200 -> [5200,7200); window 9200.
      rank 1: recvs of activations [0,1100) [1100,2100); F0 [1100,2100)
              F1 [2100,3100) B1 [3100,5100) B0 [5100,7100); sends
              [5100,5200) [7100,7200); window 7200.

    Breakdown per step (compute, exposed comm, bubble, host, idle):
      rank 0: 6000, 100, 3100, 0, 0   (bubble: drain, waiting for rank 1)
      rank 1: 6000, 200, 1000, 0, 0   (bubble: fill, waiting for rank 0)
    Each message: 1000 bytes in 100 ns = 10 GB/s.  Critical path: F0 F1
    on rank 0, recv on rank 1 [2000,2100), F1 B1 B0 on rank 1, recv on
    rank 0 [7100,7200), B0 on rank 0: 9000 compute + 200 comm.
    """
    kernels, comms, stp = [], [], []

    def msg(st, t0, src, dst, seq, s_send, s_recv, end):
        comms.append({"rank": src, "kind": "send", "bytes": 1000, "peer": dst, "seq": seq,
                      "step": st, "start_ns": t0 + s_send, "dur_ns": end - s_send})
        comms.append({"rank": dst, "kind": "recv", "bytes": 1000, "peer": src, "seq": seq,
                      "step": st, "start_ns": t0 + s_recv, "dur_ns": end - s_recv})
        kernels.append(_k(src, 5, t0 - 50, t0 + s_send, end - s_send, st, stream=1))
        kernels.append(_k(dst, 6, t0 - 50, t0 + s_recv, end - s_recv, st, stream=1))

    for st in range(steps):
        t0 = 20_000 + 9_300 * st
        for op, a, b in ((1, 0, 1000), (1, 1000, 2000), (2, 5200, 7200), (2, 7200, 9200)):
            kernels.append(_k(0, op, t0 - 50, t0 + a, b - a, st))
        for op, a, b in ((1, 1100, 2100), (1, 2100, 3100), (2, 3100, 5100), (2, 5100, 7100)):
            kernels.append(_k(1, op, t0 - 50, t0 + a, b - a, st))
        # activations 0 -> 1 (seq per channel: 2 per step), gradients 1 -> 0
        msg(st, t0, 0, 1, 2 * st, 1000, 0, 1100)
        msg(st, t0, 0, 1, 2 * st + 1, 2000, 1100, 2100)
        msg(st, t0, 1, 0, 2 * st, 5100, 2000, 5200)
        msg(st, t0, 1, 0, 2 * st + 1, 7100, 5200, 7200)
        stp.append({"rank": 0, "step": st, "start_ns": t0, "dur_ns": 9200})
        stp.append({"rank": 1, "step": st, "start_ns": t0, "dur_ns": 7200})
    ops = _pp_ops(0) + _pp_ops(1)
    return write_profile(root, base_meta(), kernels=kernels, comms=comms, steps=stp, ops=ops)


def tiny(root) -> Path:
    """One rank, one step [0, 2000): ten 50 ns kernels of Add-op1, launched
    every 200 ns from 100 (launch cost 200) and started 10 ns after their
    launch.  Busy 500; host gaps 100 + 9 x 140 = 1360; idle 140 (queued 10
    before each kernel, tail 40)."""
    kernels = [_k(0, 1, 100 + 200 * i, 110 + 200 * i, 50, 0) for i in range(10)]
    ops = [{"rank": 0, "op_id": 1, "name": "Add-op1", "type": "Add", "scope": "net/Add-op1"}]
    steps = [{"rank": 0, "step": 0, "start_ns": 0, "dur_ns": 2000}]
    return write_profile(root, base_meta((0,)), kernels=kernels, ops=ops, steps=steps)



def tiny_behind_queued_work(root) -> Path:
    """One rank.  Step 0 [0, 10000): MatMul-op1 launched and started at
    100, stretched to 3000 while the host launches ten 50 ns Fill-op2
    kernels every 200 ns from 200 (launch cost 200); they run from 3100,
    one every 60 ns, the last ending at 3690.  Step 1 [10000, 12000):
    MatMul-op1 alone, at its own 1000 ns.  The Fill run holds the stream
    590 ns and starves it (3100 - 200) - (1000 - 100) = 2000 ns before:
    MatMul had 900 ns of its own work left at the first launch."""
    kernels = [_k(0, 1, 100, 100, 3000, 0)]
    kernels += [_k(0, 2, 200 + 200 * i, 3100 + 60 * i, 50, 0) for i in range(10)]
    kernels += [_k(0, 1, 10100, 10100, 1000, 1)]
    ops = [{"rank": 0, "op_id": 1, "name": "MatMul-op1", "type": "MatMul",
            "scope": "net/dense/MatMul-op1"},
           {"rank": 0, "op_id": 2, "name": "Fill-op2", "type": "Fill",
            "scope": "net/tiny/Fill-op2"}]
    steps = [{"rank": 0, "step": 0, "start_ns": 0, "dur_ns": 10000},
             {"rank": 0, "step": 1, "start_ns": 10000, "dur_ns": 2000}]
    return write_profile(root, base_meta((0,)), kernels=kernels, ops=ops, steps=steps)

# Summary mode: kernels and pool events folded per operator (FORMAT.md).

def hist_bucket(dur_ns: int) -> int:
    """The bucket FORMAT.md puts a duration in: its bit length, the last
    bucket for anything longer."""
    return min(int(dur_ns).bit_length(), HIST_BUCKETS - 1)


def fold_kernels(kernels: list[dict]) -> list[dict]:
    """kernel rows -> kernel_summary rows, one per (rank, pid, op_id, stream),
    by the rule of FORMAT.md (written out here, not taken from msprof)."""
    rows: dict[tuple, dict] = {}
    for k in kernels:
        row = {**DEFAULT_ROW, **k}
        key = (row["rank"], row["pid"], row["op_id"], row["stream"])
        r = rows.setdefault(key, {"rank": key[0], "pid": key[1], "op_id": key[2],
                                  "stream": key[3], "calls": 0, "total_ns": 0,
                                  "min_ns": row["dur_ns"], "max_ns": row["dur_ns"],
                                  "hist": [0] * HIST_BUCKETS})
        r["calls"] += 1
        r["total_ns"] += row["dur_ns"]
        r["min_ns"] = min(r["min_ns"], row["dur_ns"])
        r["max_ns"] = max(r["max_ns"], row["dur_ns"])
        r["hist"][hist_bucket(row["dur_ns"])] += 1
    return list(rows.values())


def fold_memory(memory: list[dict]) -> list[dict]:
    """memory rows -> memory_summary rows, one per (rank, pid, op_id): a
    free counts for the operator that allocated its block (paired by rank
    and address in time order); ``peak_in_use`` is the largest ``in_use``
    right after one of the operator's allocations."""
    rows: dict[tuple, dict] = {}
    owner: dict[tuple, int] = {}
    for m in sorted(({**DEFAULT_ROW, **m} for m in memory), key=lambda m: m["ts_ns"]):
        op = m["op_id"] if m["size"] > 0 else owner.pop((m["rank"], m["addr"]), m["op_id"])
        key = (m["rank"], m["pid"], op)
        r = rows.setdefault(key, {"rank": key[0], "pid": key[1], "op_id": op, "allocs": 0,
                                  "alloc_bytes": 0, "frees": 0, "freed_bytes": 0,
                                  "peak_in_use": 0})
        if m["size"] > 0:
            owner[(m["rank"], m["addr"])] = op
            r["allocs"] += 1
            r["alloc_bytes"] += m["size"]
            r["peak_in_use"] = max(r["peak_in_use"], m["in_use"])
        else:
            r["frees"] += 1
            r["freed_bytes"] -= m["size"]
    return list(rows.values())


def as_summary(trace_root, root) -> Path:
    """The trace-mode profile at ``trace_root`` as ``msprof run --mode
    summary`` would have written it: the same steps, comms, ops, devices and
    CPU tables, ``mode`` "summary", no kernel or memory rows, and those
    folded into kernel_summary and memory_summary."""
    import pandas as pd

    trace_root, root = Path(trace_root), Path(root)
    tables = {name: pd.read_parquet(trace_root / f"{name}.parquet").to_dict("records")
              for name in SCHEMAS if (trace_root / f"{name}.parquet").is_file()}
    meta = json.loads((trace_root / "meta.json").read_text())
    meta["mode"] = "summary"
    tables["kernel_summary"] = fold_kernels(tables.pop("kernels", []))
    tables["memory_summary"] = fold_memory(tables.pop("memory", []))
    return write_profile(root, meta, **tables)


# Pool events of :func:`summary_reference` (rank, ts, addr, size, op, in_use).
SUMMARY_MEMORY = [
    {"rank": r, "pid": 100 + r, "ts_ns": ts, "addr": addr, "size": size, "op_id": op,
     "in_use": in_use}
    for r, ts, addr, size, op, in_use in (
        (0, 500, 1, 1000, -1, 1000),      # parameters, never freed
        (0, 1200, 2, 500, 1, 1500),
        (0, 1900, 2, -500, 1, 1000),
        (0, 2500, 3, 3000, 1, 4000),      # rank 0's peak, MatMul-op1
        (0, 2800, 3, -3000, 1, 1000),
        (0, 2900, 4, 256, 2, 1256),       # ReLU-op2 keeps 256 bytes
        (1, 900, 1, 2048, -1, 2048),
        (1, 1100, 2, 100, 2, 2148),       # rank 1's peak, ReLU-op2
        (1, 1150, 2, -100, 2, 2048),
    )]


def _ks(rank, op, calls, total, lo, hi, buckets, stream=0):
    hist = [0] * HIST_BUCKETS
    for b, n in buckets.items():
        hist[b] = n
    return {"rank": rank, "pid": 100 + rank, "op_id": op, "stream": stream, "calls": calls,
            "total_ns": total, "min_ns": lo, "max_ns": hi, "hist": hist}


def _ms(rank, op, allocs, alloc_bytes, frees, freed_bytes, peak):
    return {"rank": rank, "pid": 100 + rank, "op_id": op, "allocs": allocs,
            "alloc_bytes": alloc_bytes, "frees": frees, "freed_bytes": freed_bytes,
            "peak_in_use": peak}


# The kernels of ``reference`` folded by hand: 200 ns is in bucket 8
# [128, 256), 300 and 400 in 9 [256, 512), 100 in 7 [64, 128), 50 in 6.
SUMMARY_KERNELS = [
    _ks(0, 1, 3, 900, 200, 400, {8: 1, 9: 2}),
    _ks(1, 1, 1, 200, 200, 200, {8: 1}),
    _ks(0, 2, 3, 250, 50, 100, {6: 1, 7: 2}),
    _ks(1, 2, 1, 100, 100, 100, {7: 1}),
    _ks(0, 3, 1, 100, 100, 100, {7: 1}, stream=1),
]

SUMMARY_MEMORY_ROWS = [
    _ms(0, -1, 1, 1000, 0, 0, 1000),
    _ms(0, 1, 2, 3500, 2, 3500, 4000),
    _ms(0, 2, 1, 256, 0, 0, 1256),
    _ms(1, -1, 1, 2048, 0, 0, 2048),
    _ms(1, 2, 1, 100, 1, 100, 2148),
]


def summary_reference(root) -> Path:
    """``reference`` recorded in summary mode (its steps, comms, ops and
    devices; no kernel or memory rows), with the pool events of
    SUMMARY_MEMORY.

    Operators (all ranks): MatMul-op1 calls 4, total 1100, min 200, max
    400, mean 275, buckets 8: 2 and 9: 2.  p50: the count 2 is reached at
    the end of bucket 8 -> 256.  p99: 3.96 is 0.98 of the way through
    bucket 9 -> 256 + 0.98 x 256 = 506.88, clamped to the max, 400.
    ReLU-op2 calls 4, total 350, min 50, max 100, buckets 6: 1 and 7: 3;
    p50: 2 is a third of the way through bucket 7 -> 64 + 64 / 3 =
    85.33; p99 -> 127.1, clamped to 100.  AllReduce-op3: one call of 100
    (every estimate clamped to 100).  Kernel time 1550; every kernel counts
    inside a step: MatMul per step 1100 / 4 = 275, ReLU 350 / 4 = 87.5.

    Memory: rank 0 peaks at 4000 (MatMul-op1), rank 1 at 2148 (ReLU-op2);
    held at the end: rank 1's parameters 2048, rank 0's 1000, ReLU-op2
    on rank 0 256 (3304 in all); MatMul-op1 allocated 3500 and freed it.
    """
    steps = [{"rank": r, "pid": 100 + r, "step": st, "start_ns": 1000 + 1000 * st, "dur_ns": 1000}
             for r in (0, 1) for st in (0, 1)]
    comms = [{"rank": 0, "kind": "allreduce", "bytes": 4096, "seq": 0, "step": 0,
              "start_ns": 1600, "dur_ns": 100}]
    devices = [{"rank": r, "pid": 100 + r, "world_size": 2} for r in (0, 1)]
    return write_profile(root, base_meta(mode="summary"), ops=_ops(0) + _ops(1), steps=steps,
                         comms=comms, devices=devices, kernel_summary=SUMMARY_KERNELS,
                         memory_summary=SUMMARY_MEMORY_ROWS)


# Fixtures over these scenarios; test modules import them by name.

import pytest  # noqa: E402

import msprof  # noqa: E402


def one_row(df, **key):
    """The one row of ``df`` whose columns equal ``key``'s values."""
    sel = df
    for k, v in key.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def frame_at(root, *path):
    """The flamegraph frame reached from ``root`` through the child names ``path``."""
    node = root
    for name in path:
        node = next(c for c in node.children if c.name == name)
    return node


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


@pytest.fixture
def dp_clean(tmp_path):
    """Balanced data parallel on 4 ranks, communication fully overlapped."""
    return msprof.load(data_parallel(tmp_path / "dp_clean"))


@pytest.fixture
def dp_slow(tmp_path):
    """Data parallel on 4 ranks, rank 2 computing 2000 ns longer per step."""
    return msprof.load(data_parallel(tmp_path / "dp_slow", slow_rank=2))


@pytest.fixture
def dp_contended(tmp_path):
    """Data parallel on 4 ranks, rank 2 waiting 2000 ns per step for a CPU."""
    return msprof.load(contended(tmp_path / "dp_contended"))


@pytest.fixture
def summary_dir(tmp_path):
    """The ``summary_reference`` profile directory, written afresh."""
    return summary_reference(tmp_path / "summary")


@pytest.fixture
def summ(summary_dir):
    """The ``summary_reference`` profile, loaded."""
    return msprof.load(summary_dir)


@pytest.fixture
def pp(tmp_path):
    """The two-stage pipeline."""
    return msprof.load(pipeline(tmp_path / "pp"))
