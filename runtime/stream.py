"""Streams: ordered kernel queues, each run by its own worker thread.

As on a GPU, the host *launches* a kernel (enqueues it, ``kernel_launch``)
and returns at once; the stream *executes* kernels one after another
(``kernel_begin`` / ``kernel_end``).  numpy releases the GIL inside its
loops and BLAS calls, so the host keeps launching while the stream
computes.  A work item is ``(op_id, seq, launch_ns, kernel)``; the launch
time travels with it so ``kernel_end`` carries the whole kernel in one
probe hit.  Items with a negative op id are control items (a sync marker,
a stop) and fire no probe.

``synchronize`` waits on a lock the stream's worker releases when it gets
to the marker (one wake-up of the host thread, no Python-level condition);
a stream whose last launched kernel has already run returns at once, so a
device synchronize costs no round trip through an idle stream (the compute
stream of a graph of collectives).

``InlineStream`` runs each kernel inside the launch call (no thread): the
same probe sequence, for debugging and for the null device.

Stream workers are Python threads and share the GIL with the host: with
Python's default switch interval a woken stream may wait up to 5 ms for it
behind another stream's kernel, longer than most kernels, so a collective
whose gradients are ready would start only after backward ends.  The first
threaded stream lowers the interval to ``SWITCH_INTERVAL_S`` (unless the
process already chose one): a ready stream starts within ~0.2 ms, as a
device stream would.  Measured on the demo and data-parallel LeNet: step
times unchanged within noise.
"""
from __future__ import annotations

import _thread
import sys
import queue
import threading

from msprof.runtime import hooks

COMPUTE, COMM = 0, 1          # stream ids of a device
SWITCH_INTERVAL_S = 2e-4  # GIL hand-off bound while streams run (see above)
_PYTHON_DEFAULT_SWITCH_S = 5e-3


def _share_the_gil_promptly() -> None:
    if sys.getswitchinterval() == _PYTHON_DEFAULT_SWITCH_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)


class StreamError(RuntimeError):
    """A kernel failed on a stream; raised at the next synchronize()."""


class Stream:
    threaded = True                        # kernels run on the stream's own thread

    def __init__(self, stream_id: int, name: str = "compute"):
        self.id, self.name = stream_id, name
        self.seq = 0                       # per-stream kernel counter (launches)
        self.done = 0                      # seq of the last kernel run without error
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._failed_op = -1
        self.put = self._queue.put         # the executor's launch: one C call
        self._thread = threading.Thread(target=self._work, name=f"msrt-{name}-{stream_id}",
                                        daemon=True)
        _share_the_gil_promptly()
        self._thread.start()

    def _work(self) -> None:
        get, sid = self._queue.get, self.id
        hooks.flush_staged()               # nothing staged yet: announces this thread
        while True:
            op_id, seq, t_launch, kernel = get()
            if op_id < 0:                  # control item (a synchronize marker...)
                hooks.flush_staged()       # ...sees this stream's kernels handed over
                if kernel is None:
                    return
                kernel()
                continue
            if self._error is not None:    # after a failure, drain until the sync
                continue
            hooks.kernel_begin(op_id, sid, seq)
            t_begin = hooks.now_ns()
            try:
                kernel()
            except BaseException as e:     # reported on the host at synchronize()
                self._error, self._failed_op = e, op_id
                continue
            hooks.kernel_end(op_id, sid, seq, t_launch, t_begin)
            self.done = seq

    def synchronize(self) -> None:
        """Wait until every launched kernel has run; re-raise a kernel's error."""
        if self.done == self.seq and self._error is None:
            return                         # in order: everything launched has run
        reached = _thread.allocate_lock()
        reached.acquire()
        self.put((-1, 0, 0, reached.release))
        reached.acquire()                  # released by the worker at the marker
        if self._error is not None:
            err, op = self._error, self._failed_op
            self._error, self._failed_op = None, -1
            raise StreamError(f"kernel of op {op} failed on stream {self.id}: {err!r}") from err

    def close(self) -> None:
        if self._thread.is_alive():
            self.put((-1, 0, 0, None))
            self._thread.join()


class InlineStream:
    """Runs each kernel at launch, on the host thread; ``compute=False``
    skips the arithmetic (the null device) but keeps every probe."""

    threaded = False                       # kernels run in the launch call

    def __init__(self, stream_id: int, name: str = "compute", compute: bool = True):
        self.id, self.name, self.seq, self.compute = stream_id, name, 0, compute

    done = property(lambda self: self.seq, doc="Every launched kernel has run (at launch).")

    def put(self, item) -> None:
        op_id, seq, t_launch, kernel = item
        if op_id < 0:
            if kernel is not None:
                kernel()
            return
        hooks.kernel_begin(op_id, self.id, seq)
        t_begin = hooks.now_ns()
        if self.compute:
            try:
                kernel()
            except BaseException as e:
                raise StreamError(f"kernel of op {op_id} failed on stream {self.id}: {e!r}") from e
        hooks.kernel_end(op_id, self.id, seq, t_launch, t_begin)

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        pass
