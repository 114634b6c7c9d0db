"""MSRT_CPU_HOG=r: rank r shares one core with a busy process.

For the analysis tests: the rank's threads and a process that spins are
pinned to the same core, so the rank's kernels stretch by the time the
scheduler gives the core to the other process, while the work they do
stays the same.  The busy process ends when the rank does (it watches
its parent, so a rank that crashes or is killed does not leave it behind).
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys

from msprof.runtime import cpu_bind, knobs

# Spins; every few milliseconds checks that the rank that started it lives.
_SPIN = ("import os, sys\n"
         "parent = int(sys.argv[1])\n"
         "while os.getppid() == parent:\n"
         "    for _ in range(100000): pass\n")


def start_if_asked(rank: int) -> subprocess.Popen | None:
    """Pins this process's threads (and the threads it starts later) to one
    core and starts the busy process there, when MSRT_CPU_HOG names ``rank``."""
    if knobs.CPU_HOG != rank:
        return None
    cpus = sorted(os.sched_getaffinity(0))
    core = cpus[rank % len(cpus)]
    cpu_bind.pin_process(core)
    hog = subprocess.Popen([sys.executable, "-c", _SPIN, str(os.getpid())],
                           stdin=subprocess.DEVNULL)
    os.sched_setaffinity(hog.pid, {core})
    atexit.register(_stop, hog)
    return hog


def _stop(hog: subprocess.Popen) -> None:
    hog.terminate()
    hog.wait()
