"""A device: one rank's memory pool and streams.

Devices are processes: this process is rank ``rank`` of ``world_size``
(from MPI when launched by mpiexec, see comm.py).
A device owns a compute stream (id 0) and, for collectives, a communication
stream (id 1, created on first use), so communication can overlap compute.
The first ``get_device()`` creates it from the context and fires
``device_init`` once.
"""
from __future__ import annotations

import atexit

from msprof.runtime import cpu_bind, cpu_hog, hooks
from msprof.runtime.context import get_context
from msprof.runtime.memory import MemoryPool
from msprof.runtime.stream import COMM, COMPUTE, InlineStream, Stream


def _limit_blas_threads(n: int):
    """Cap numpy's BLAS thread pool (threadpoolctl ships with scikit-learn);
    returns the limiter, which must stay referenced, or None without it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n, user_api="blas")


class Device:
    def __init__(self, target: str = "CPU", rank: int = 0, world_size: int = 1):
        self.target, self.rank, self.world_size = target, rank, world_size
        self._blas = _limit_blas_threads(get_context("blas_threads"))
        self.pool = MemoryPool()
        self.core = cpu_bind.bind_if_asked(rank)   # before the streams' threads start
        self._hog = cpu_hog.start_if_asked(rank)
        self.compute = self._stream(COMPUTE, "compute")
        self._comm = None
        hooks.device_init(rank, world_size, hooks.DEVICE_CPU)

    def _stream(self, sid: int, name: str):
        if self.target == "CPU":
            return Stream(sid, name)
        return InlineStream(sid, name, compute=self.target != "Null")

    @property
    def comm(self):
        if self._comm is None:
            self._comm = self._stream(COMM, "comm")
        return self._comm

    def synchronize(self) -> None:
        self.compute.synchronize()
        if self._comm is not None:
            self._comm.synchronize()

    def close(self) -> None:
        self.compute.close()
        if self._comm is not None:
            self._comm.close()

    def __repr__(self):
        return f"Device({self.target}, rank {self.rank}/{self.world_size})"


_device: Device | None = None


def get_device() -> Device:
    global _device
    if _device is None:
        from msprof.runtime.comm import world
        w = world()
        rank, size = ((w.rank, w.size) if w.comm is not None else
                      (get_context("rank"), get_context("world_size")))
        _device = Device(get_context("device_target"), rank, size)
    return _device


def reset_device() -> None:
    """Drop the device (tests; switching targets). Compiled graphs die with it."""
    global _device
    if _device is not None:
        _device.close()
        _device = None


atexit.register(reset_device)

