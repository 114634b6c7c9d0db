"""Fault and load injection for the analysis tests, read once from the
environment so the hot paths only test a module constant.

    MSRT_SLOW_RANK=1 MSRT_SLOW_FACTOR=2.0   rank 1's compute kernels take 2x as long
    MSRT_COMM_DELAY_US=2000                 every collective takes 2 ms longer
    MSRT_LEAK_BYTES=65536                   a persistent block per step, never freed
    MSRT_TINY_OPS=50                        50 tiny (host-bound) ops per training step
    MSRT_CRASH_RANK=1 MSRT_CRASH_STEP=3     rank 1 dies (exit 13) at step 3's start
    MSRT_CPU_HOG=1                          rank 1 and a busy process share one core
    MSRT_CPU_BIND=1,0                       rank 0 runs on core 1, rank 1 on core 0
    MSRT_DEVICE_GFLOPS=10                   compute kernels last as on a 10 GFLOP/s device
    MSRT_SLOW_LINK=1-2 MSRT_SLOW_LINK_US=500
                                            messages between ranks 1 and 2 (either way)
                                            take 500 us longer, and so does every
                                            collective of a group holding both

Pipeline bubbles need no knob: fewer micro-batches make bigger ones.
"""
from __future__ import annotations

import os


def _get(name, parse, default):
    raw = os.environ.get(name)
    return parse(raw) if raw not in (None, "") else default


SLOW_RANK = _get("MSRT_SLOW_RANK", int, -1)
SLOW_FACTOR = _get("MSRT_SLOW_FACTOR", float, 1.0)
COMM_DELAY_S = _get("MSRT_COMM_DELAY_US", float, 0.0) * 1e-6
LEAK_BYTES = _get("MSRT_LEAK_BYTES", int, 0)
TINY_OPS = _get("MSRT_TINY_OPS", int, 0)
CRASH_RANK = _get("MSRT_CRASH_RANK", int, -1)
CRASH_STEP = _get("MSRT_CRASH_STEP", int, -1)
CRASH_EXIT_CODE = 13
CPU_HOG = _get("MSRT_CPU_HOG", int, -1)


def _cores(raw: str) -> tuple[int, ...]:
    try:
        cores = tuple(int(c) for c in raw.split(","))
    except ValueError:
        cores = ()
    if not cores or min(cores) < 0:
        raise ValueError(f"MSRT_CPU_BIND={raw!r}: expected core numbers, one per rank, like 1,0")
    return cores


CPU_BIND = _get("MSRT_CPU_BIND", _cores, ())


def _rate(raw: str) -> float:
    rate = float(raw)
    if not rate > 0:
        raise ValueError(f"MSRT_DEVICE_GFLOPS={raw!r}: expected a speed above 0, like 10")
    return rate * 1e9


DEVICE_FLOPS = _get("MSRT_DEVICE_GFLOPS", _rate, 0.0)     # FLOP/s; 0: kernels take their host time


def _pair(raw: str) -> frozenset:
    a, sep, b = raw.partition("-")
    if not sep or int(a) == int(b) or int(a) < 0 or int(b) < 0:
        raise ValueError(f"MSRT_SLOW_LINK={raw!r}: expected two different ranks, like 0-1")
    return frozenset((int(a), int(b)))


SLOW_LINK = _get("MSRT_SLOW_LINK", _pair, frozenset())
SLOW_LINK_S = _get("MSRT_SLOW_LINK_US", float, 1000.0) * 1e-6 if SLOW_LINK else 0.0
