"""MSRT_DEVICE_GFLOPS=r: compute kernels take the time a device of r GFLOP/s
would.

A compute kernel still computes (numpy, on the host), then sleeps until
``flops / r`` has passed since it began: like a device kernel, it lasts
as long as its work on the device takes, however fast or busy the host's
cores are.  On a VM two cores can run the same kernels a third apart and
drift within seconds, so a comparison of ranks or of runs within 10 %
needs kernels whose length the host does not set (the slow-rank,
pipeline, clean-job and LeNet-backend tests run with it).  A kernel the host takes longer to
compute than the model keeps its own time (pick ``r`` below the host's
speed).  A sleep that overshoots (a late wake-up) is paid back by the
following kernels, up to ``PAYBACK_S``, as a device's clock would not
drift.  MSRT_SLOW_FACTOR multiplies the slow rank's kernel times (the
modelled time, or the host's where longer).
"""
from __future__ import annotations

import ctypes
import threading
import time

PAYBACK_S = 0.002
_PR_SET_TIMERSLACK = 29

# Sleep overshoot still owed by this process's modelled kernels (they all
# run on the compute stream's thread).
_owed = [0.0]
_precise = threading.local()


def _tight_timer_slack() -> None:
    """Wake this thread within ~1 ns of the deadline, not the default 50 us
    (a small kernel's whole length)."""
    if not getattr(_precise, "set", False):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        _precise.set = True


def modelled(kernel, seconds: float, factor: float = 1.0):
    """``kernel``, lasting at least ``seconds`` (its time on the device), or
    its host time if longer; ``factor`` times that (MSRT_SLOW_FACTOR)."""
    now, sleep, owed = time.perf_counter, time.sleep, _owed

    def device_kernel():
        t = now()
        kernel()
        t1 = now()
        until = t + owed[0] + max(seconds, t1 - t) * factor
        if t1 >= until:                 # the host took longer than the device would
            owed[0] = 0.0
            return
        _tight_timer_slack()
        sleep(until - t1)
        owed[0] = max(until - now(), -PAYBACK_S)
    return device_kernel
