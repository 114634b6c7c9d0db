"""A two-rank data-parallel profile on a microsecond scale (HTA rounds
timestamps to whole microseconds), whose breakdown is known by construction.

Each rank runs ``steps`` contiguous steps of 1000 us starting at 1 s.  Per
step on rank r (times in us from the step's start):
  compute stream: Conv2D [0, 300), ReLU [350, 450), Conv2DGrad [500, 800)
                  (rank 1: Conv2DGrad ends at 850)
  comm stream:    AllReduce [600, 1000) on both ranks (waits for rank 1)
So compute is 700 us (rank 1: 750), the allreduce 400 us (200 of it
overlapping compute on rank 0, 250 on rank 1), idle [300, 350) and
[450, 500): 100 us, every step.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from profiles import base_meta, write_profile  # noqa: E402

US = 1000
T0 = 1_000_000_000


def ops(rank):
    return [
        {"rank": rank, "op_id": 1, "name": "Conv2D-op1", "type": "Conv2D",
         "scope": "net/conv1/Conv2D-op1", "flops": 10_000, "bytes": 4000},
        {"rank": rank, "op_id": 2, "name": "ReLU-op2", "type": "ReLU",
         "scope": "net/conv1/ReLU-op2", "flops": 0, "bytes": 400},
        {"rank": rank, "op_id": 3, "name": "Conv2DGrad-op3", "type": "Conv2DGrad",
         "scope": "Gradients/net/conv1/Conv2DGrad-op3", "flops": 20_000, "bytes": 8000},
        {"rank": rank, "op_id": 4, "name": "AllReduce-op4", "type": "AllReduce",
         "scope": "Gradients/AllReduce/AllReduce-op4", "flops": 0, "bytes": 4000},
    ]


def dp_us(root, steps=4) -> Path:
    kernels, stp, comms, memory = [], [], [], []
    for r in (0, 1):
        used = 0
        for st in range(steps):
            t0 = T0 + st * 1000 * US
            stp.append({"rank": r, "pid": 100 + r, "step": st, "start_ns": t0, "dur_ns": 1000 * US})
            grad_end = 800 if r == 0 else 850
            for op, a, b, s in ((1, 0, 300, 0), (2, 350, 450, 0), (3, 500, grad_end, 0),
                                (4, 600, 1000, 1)):
                kernels.append({"rank": r, "pid": 100 + r, "op_id": op, "stream": s, "step": st,
                                "seq": st, "launch_ns": t0 + a * US - 5 * US if a else t0,
                                "start_ns": t0 + a * US, "dur_ns": (b - a) * US})
            comms.append({"rank": r, "pid": 100 + r, "kind": "allreduce", "bytes": 4000,
                          "seq": st, "step": st, "start_ns": t0 + 600 * US, "dur_ns": 400 * US})
            used += 4096
            memory.append({"rank": r, "pid": 100 + r, "ts_ns": t0 + 10, "addr": 4096,
                           "size": 4096, "op_id": 1, "in_use": used})
            used -= 4096
            memory.append({"rank": r, "pid": 100 + r, "ts_ns": t0 + 300 * US, "addr": 4096,
                           "size": -4096, "op_id": 1, "in_use": used})
    devices = [{"rank": r, "pid": 100 + r, "world_size": 2} for r in (0, 1)]
    meta = base_meta((0, 1), start_ns=T0, end_ns=T0 + steps * 1000 * US)
    return write_profile(root, meta, kernels=kernels, steps=stp, comms=comms, memory=memory,
                         ops=ops(0) + ops(1), devices=devices)
