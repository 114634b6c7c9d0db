"""Fault and load injection for the analysis tests, read once from the
environment so the hot paths only test a module constant.

    MSRT_SLOW_RANK=1 MSRT_SLOW_FACTOR=2.0   rank 1's compute kernels take 2x as long
    MSRT_COMM_DELAY_US=2000                 every collective takes 2 ms longer
    MSRT_LEAK_BYTES=65536                   a persistent block per step, never freed
    MSRT_TINY_OPS=50                        50 tiny (host-bound) ops per training step
    MSRT_CRASH_RANK=1 MSRT_CRASH_STEP=3     rank 1 dies (exit 13) at step 3's start

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
