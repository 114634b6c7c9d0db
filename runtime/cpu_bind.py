"""MSRT_CPU_BIND=c0,c1,...: rank r runs on core c[r] (r modulo the list).

Ranks of one machine that each run on cores of their own run at those
cores' speeds, and on a VM two cores can run the same kernels a third
apart: a rank then looks slow for its core, not its work.  Binding keeps
runs that are compared with each other on the same cores (the tiny-op
pairs, the contention runs and their neighbours), and swapping the cores
tells a core from a rank as far as the cores' speeds hold still (on this
kind of VM they drift within seconds).  Applied when the device starts,
before its streams' threads: they inherit it.
"""
from __future__ import annotations

import os

from msprof.runtime import knobs


def pin_process(core: int) -> None:
    """Pins every thread of this process, and those it starts later, to
    ``core``."""
    for tid in os.listdir("/proc/self/task"):   # threads started later inherit it
        os.sched_setaffinity(int(tid), {core})


def bind_if_asked(rank: int) -> int | None:
    """The core MSRT_CPU_BIND gives ``rank``, this process pinned to it; None
    without the knob."""
    if not knobs.CPU_BIND:
        return None
    core = knobs.CPU_BIND[rank % len(knobs.CPU_BIND)]
    allowed = os.sched_getaffinity(0)
    if core not in allowed:
        raise ValueError(f"MSRT_CPU_BIND: core {core} (rank {rank}) is not one this process "
                         f"may run on ({', '.join(map(str, sorted(allowed)))})")
    pin_process(core)
    return core
