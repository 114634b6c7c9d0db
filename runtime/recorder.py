"""In-process recorder: the hook points' fallback when eBPF is not available.

``msprof run --backend inprocess`` (or a run without root or BCC) starts the
script with ``MSPROF_INPROCESS_DIR`` set; ``hooks`` then routes every probe
to a Recorder, which builds the very records the BPF programs would emit
(msprof.probes.events), pairs begin/end the same way, and appends them to
``events-<pid>.bin`` and ``meta-<pid>.bin`` in that directory, where the
collector decodes them with the same code as ring-buffer records.

Records are flushed in batches and at interpreter exit; a process killed
with SIGKILL loses its last unflushed batch.
"""
from __future__ import annotations

import atexit
import os
import threading
import time

import numpy as np

from msprof.probes import events as ev
from msprof.runtime.hooks import mem_batch_events

_FLUSH_EVERY = 4096
_now = time.monotonic_ns


class Recorder:
    def __init__(self, directory: str):
        self.pid = os.getpid()
        os.makedirs(directory, exist_ok=True)
        self._events_path = os.path.join(directory, f"events-{self.pid}.bin")
        self._meta_path = os.path.join(directory, f"meta-{self.pid}.bin")
        self._events: list[tuple] = []
        self._meta: list[tuple] = []
        self._lock = threading.Lock()
        self._step = -1
        self._step_begin = 0
        self._open_comms: dict[tuple[int, int], int] = {}
        self._failed = False
        atexit.register(self.close)

    # -- records -----------------------------------------------------------
    def _event(self, type_, sub, seq, a0, a1, a2, a3, ts=None):
        self._events.append((ts or _now(), self.pid, threading.get_native_id(),
                             type_, sub, seq, a0, a1, a2, a3))
        if len(self._events) >= _FLUSH_EVERY:
            self.flush()

    def _meta_record(self, type_, a0, a1=0, a2=0, a3=0, name=b"", optype=b"", scope=b""):
        self._meta.append((_now(), self.pid, type_, a0, a1, a2, a3, name, optype, scope))
        self.flush()  # rare, and the collector needs ranks and ops early

    def flush(self) -> None:
        with self._lock:
            meta, self._meta = self._meta, []
            events, self._events = self._events, []
            if self._failed:
                return
            try:
                if meta:
                    with open(self._meta_path, "ab") as f:
                        f.write(np.array(meta, dtype=ev.META).tobytes())
                if events:
                    with open(self._events_path, "ab") as f:
                        f.write(np.array(events, dtype=ev.EVENT).tobytes())
            except OSError:
                # The disk holding the profile is full (the collector says so):
                # recording stops for good, since a record cut short would shift
                # every later one, and the training goes on.
                self._failed = True

    def close(self) -> None:
        # The exit status is not known at interpreter exit: -1, as the eBPF
        # backend records for a process that never called exit_group().
        self._event(ev.EXIT, 0, 0, -1, 0, 0, 0)
        self.flush()

    # -- the hook points (same signatures as msprof.runtime._usdt) ----------
    def device_init(self, rank, world_size, device_kind):
        self._meta_record(ev.DEVICE_INIT, rank, world_size, device_kind)

    def op_register(self, op_id, graph_id, name, type_, scope, flops, nbytes):
        self._meta_record(ev.OP_REGISTER, op_id, graph_id, flops, nbytes,
                          name.encode()[:ev.NAME_LEN - 1], type_.encode()[:ev.TYPE_LEN - 1],
                          scope.encode()[:ev.SCOPE_LEN - 1])

    def step_begin(self, step):
        self._step, self._step_begin = step, _now()

    def step_end(self, step, samples):
        self._event(ev.STEP, 0, step, self._step_begin, samples, 0, self._step)
        self._step = -1

    def kernel_launch(self, op_id, stream, seq):
        pass  # kernel_end carries the launch time, as in the eBPF backend

    def kernel_begin(self, op_id, stream, seq):
        pass

    def kernel_end(self, op_id, stream, seq, launch_ns, begin_ns):
        self._event(ev.KERNEL, stream, seq, op_id, launch_ns, begin_ns, self._step)

    def mem_alloc(self, addr, size, op_id, in_use):
        self._event(ev.MEM_ALLOC, 0, 0, addr, size, op_id, in_use)

    def mem_free(self, addr, size, op_id, in_use):
        self._event(ev.MEM_FREE, 0, 0, addr, size, op_id, in_use)

    def mem_batch(self, in_use, frees, *triples):
        for name, args in mem_batch_events(in_use, frees, *triples):
            getattr(self, name)(*args)

    def flush_staged(self):
        """Nothing is staged per thread here: records go to this process's
        batch as they happen (written out by ``flush``)."""

    def comm_begin(self, kind, nbytes, group, peer, seq):
        self._open_comms[(kind, seq)] = _now()

    def comm_end(self, kind, nbytes, group, peer, seq):
        begin = self._open_comms.pop((kind, seq), None)
        if begin is not None:
            self._event(ev.COMM, kind, seq, begin, nbytes,
                        (group << 32) | (peer & 0xFFFFFFFF), self._step)
