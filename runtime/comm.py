"""The communication world of this process: rank, size, and the collectives.

Devices are processes.  Launched by mpiexec (or ``msprof run -n N``), this
process is one rank of an MPI world: MPI is initialised with
MPI_THREAD_MULTIPLE, since the device's communication stream (a worker
thread) makes the calls while the host thread launches.  Started on its own,
the world is one rank and MPI is never imported, so a script runs where
mpi4py is missing.

Every collective fires ``comm_begin`` / ``comm_end`` (kind, bytes, group,
peer, seq).  ``seq`` counts per channel in issue order: a collective over a
group counts on (group, -1), a send to p on (group, "send", p), a receive
from p on (group, "recv", p).  So the same collective carries the same seq on
every rank of its group, and a message carries the same seq at its sender
and its receiver.  Kernels are pool-backed numpy buffers and go through
mpi4py's buffer (uppercase) methods: no pickling, the GIL released.
"""
from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np

from msprof.runtime import hooks, knobs

# Collective kinds, as in probes/CATALOG.md (the runtime does not import probes).
ALLREDUCE, ALLGATHER, REDUCE_SCATTER, BROADCAST, SEND, RECV, BARRIER = range(7)
WORLD = 0                          # group id of the world communicator

# Environment variables process managers set on their ranks.
_LAUNCH_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    return os.environ.get("MSRT_MPI") == "1" or any(v in os.environ for v in _LAUNCH_VARS)


class World:
    """This process's place in the job and its collectives (one per process)."""

    def __init__(self):
        self.comm = None
        self.rank, self.size = 0, 1
        self._seq: dict = {}
        if launched_by_mpi():
            self._init_mpi()

    def _init_mpi(self) -> None:
        from mpi4py import rc
        rc.thread_level = "multiple"
        from mpi4py import MPI
        if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
            raise RuntimeError("the MPI library does not provide MPI_THREAD_MULTIPLE, "
                               "which the communication stream needs")
        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        if self.size > 1:
            _abort_on_uncaught(self.comm)

    def _next(self, key) -> int:
        seq = self._seq.get(key, 0)
        self._seq[key] = seq + 1
        return seq

    # -- collectives (called by comm kernels on the comm stream) ---------------
    def allreduce(self, buf, group=WORLD, out=None) -> None:
        """Sum ``buf`` over the group, in place or into ``out``."""
        seq = self._next((group, -1))
        hooks.comm_begin(ALLREDUCE, buf.nbytes, group, -1, seq)
        if self.size > 1:
            if out is None:
                self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
            else:
                self.comm.Allreduce(buf, out, op=self.MPI.SUM)
        elif out is not None:
            np.copyto(out, buf)
        _delay()
        hooks.comm_end(ALLREDUCE, buf.nbytes, group, -1, seq)

    def allgather(self, send, recv, group=WORLD) -> None:
        """recv (size x send's elements) = every rank's send, in rank order."""
        seq = self._next((group, -1))
        hooks.comm_begin(ALLGATHER, recv.nbytes, group, -1, seq)
        if self.size > 1:
            self.comm.Allgather(send, recv)
        else:
            recv.reshape(send.shape)[...] = send
        _delay()
        hooks.comm_end(ALLGATHER, recv.nbytes, group, -1, seq)

    def reduce_scatter(self, send, recv, group=WORLD) -> None:
        """recv = this rank's block of the sum of every rank's send."""
        seq = self._next((group, -1))
        hooks.comm_begin(REDUCE_SCATTER, send.nbytes, group, -1, seq)
        if self.size > 1:
            self.comm.Reduce_scatter_block(send, recv, op=self.MPI.SUM)
        else:
            recv.reshape(-1)[...] = send.reshape(-1)
        _delay()
        hooks.comm_end(REDUCE_SCATTER, send.nbytes, group, -1, seq)

    def broadcast(self, buf, root: int, group=WORLD) -> None:
        seq = self._next((group, -1))
        hooks.comm_begin(BROADCAST, buf.nbytes, group, -1, seq)
        if self.size > 1:
            self.comm.Bcast(buf, root=root)
        _delay()
        hooks.comm_end(BROADCAST, buf.nbytes, group, -1, seq)

    def send(self, buf, peer: int, group=WORLD) -> None:
        seq = self._next((group, "send", peer))
        hooks.comm_begin(SEND, buf.nbytes, group, peer, seq)
        self.comm.Send(buf, dest=peer, tag=seq & 0x7FFF)
        _delay(peer)
        hooks.comm_end(SEND, buf.nbytes, group, peer, seq)

    def recv(self, buf, peer: int, group=WORLD) -> None:
        seq = self._next((group, "recv", peer))
        hooks.comm_begin(RECV, buf.nbytes, group, peer, seq)
        self.comm.Recv(buf, source=peer, tag=seq & 0x7FFF)
        _delay(peer)
        hooks.comm_end(RECV, buf.nbytes, group, peer, seq)

    def barrier(self, group=WORLD) -> None:
        seq = self._next((group, -1))
        hooks.comm_begin(BARRIER, 0, group, -1, seq)
        if self.size > 1:
            self.comm.Barrier()
        hooks.comm_end(BARRIER, 0, group, -1, seq)


def _delay(peer: int = -1) -> None:
    # MSRT_COMM_DELAY_US: every collective takes this much longer (comm made
    # the bottleneck).  MSRT_SLOW_LINK: a message to or from ``peer`` over
    # the slow pair, or a collective (peer -1) of a group holding both ranks
    # of it, takes MSRT_SLOW_LINK_US longer.  One global read each when off.
    if knobs.COMM_DELAY_S:
        time.sleep(knobs.COMM_DELAY_S)
    if knobs.SLOW_LINK_S:
        w = world()
        if ({w.rank, peer} == knobs.SLOW_LINK if peer >= 0 else
                all(r < w.size for r in knobs.SLOW_LINK)):
            time.sleep(knobs.SLOW_LINK_S)


def _abort_on_uncaught(comm) -> None:
    """An uncaught exception on one rank must end the job: without this the
    rank would sit in MPI_Finalize and its peers in their next collective."""
    previous = sys.excepthook

    def hook(*exc):
        if previous is sys.__excepthook__:
            # One write, so the launcher forwards the whole traceback before
            # the abort tears its output pipes down (piecewise writes lost
            # everything after the first line now and then).
            sys.stderr.write("".join(traceback.format_exception(*exc)))
        else:
            previous(*exc)
        sys.stderr.flush()
        time.sleep(0.2)  # let the launcher drain this rank's output
        comm.Abort(1)
    sys.excepthook = hook


_world: World | None = None


def world() -> World:
    global _world
    if _world is None:
        _world = World()
    return _world


def get_rank() -> int:
    """This process's rank (0 when not launched by mpiexec)."""
    return world().rank


def get_group_size() -> int:
    """The number of ranks (devices) of the job."""
    return world().size
