"""The executor: launches a compiled graph's op list on the compute stream.

Per op, on the host thread: free the buffers whose last reader was the op
before, allocate this op's buffers from the pool, take the launch time,
``kernel_launch``, enqueue.  The frees and allocations are planned at
compile time, so they are reported in ``mem_batch`` probe hits of up to
three events each (one hit per op, mostly) rather than one hit per block:
a traced probe costs the better part of a microsecond; the frees of the
last op follow its launch.
The stream thread brackets the kernel with ``kernel_begin`` and
``kernel_end``.  Traced, kernel_end and the pool events are staged as
records and handed to the tracer in batches (see runtime/_usdt.c): a
stream flushes at each synchronize marker, the host after each run.  A training step is ``step_begin``, the launches, a stream
synchronize, the outputs copied out and freed, ``step_end``.

This loop is what the profiler's overhead is measured against, so it does
nothing per op but the probes, the accounting and one queue put; all the
planning happened at compile time.  A graph with communication ops takes a
second loop (``_launch_streams``): each op goes to its own stream, and where
the compiler marked a cross-stream dependency an event is recorded on the
other stream and waited for on this one, as with CUDA events (none where the
other stream has already run every kernel launched on it).
"""
from __future__ import annotations

from _thread import allocate_lock
from typing import NamedTuple

import numpy as np

from msprof.runtime import hooks, knobs


class Step(NamedTuple):
    """One op of the schedule, as the executor consumes it."""
    op_id: int
    kernel: object                      # zero-argument callable
    allocs: tuple                       # ((addr, size), ...) born at this op
    frees: tuple                        # ((addr, size, owner op id), ...) dying after it


class Executable:
    def __init__(self, graph, device, steps, feeds, outputs, arena, lanes=None):
        self.graph, self.device = graph, device
        self.steps = tuple(steps)
        self.lanes = lanes              # ((stream id, wait), ...) per op, or None
        self.leaked: list = []          # MSRT_LEAK_BYTES blocks, never freed
        self.feeds = feeds              # input buffers (pool views), in graph order
        self.outputs = outputs          # (view, addr, size, owner op id)
        self.arena = arena
        self.ops = graph.ops
        # Per op, the pool events reported just before its launch (the frees
        # of the op before it, then its own allocations), packed into
        # mem_batch calls; and the last op's frees, reported after it.
        self.mem_before = tuple(
            hooks.mem_batches([(True, a, size, owner) for a, size, owner in prev]
                              + [(False, a, size, op_id) for a, size in allocs])
            for prev, (op_id, _, allocs, _) in zip(
                [()] + [st.frees for st in self.steps[:-1]], self.steps))
        self.mem_after = hooks.mem_batches(
            [(True, a, size, owner) for a, size, owner in self.steps[-1].frees]
            if self.steps else [])

    def __len__(self):
        return len(self.steps)

    def run(self, inputs, step: int | None = None, samples: int = 0) -> list[np.ndarray]:
        """Run once; ``step`` (a training step number) brackets the run with
        step_begin/step_end, the latter carrying the ``samples`` the step
        trained on.  Returns copies of the outputs."""
        if len(inputs) != len(self.feeds):
            raise ValueError(f"graph {self.graph.name} takes {len(self.feeds)} inputs, "
                             f"got {len(inputs)}")
        for feed, x in zip(self.feeds, inputs):
            if np.shape(x) != feed.shape:
                raise ValueError(f"input of shape {np.shape(x)}, the graph was "
                                 f"compiled for {feed.shape}")
        if step is not None:
            hooks.step_begin(step)
        for feed, x in zip(self.feeds, inputs):
            np.copyto(feed, x, casting="unsafe")     # host to device
        launch = self._launch if self.lanes is None else self._launch_streams
        if step is not None and knobs.LEAK_BYTES and self.steps:
            last = len(self.steps) - 1
            launch(0, last)
            self._leak()                               # while launching the last op
            launch(last, last + 1)
        else:
            launch(0, len(self.steps))
        if self.lanes is None:
            self.device.compute.synchronize()
        else:
            self.device.synchronize()
        results = [view.copy() for view, _, _, _ in self.outputs]
        pool = self.device.pool
        for _, addr, size, owner in self.outputs:
            if addr >= 0:
                pool.in_use -= size
                hooks.mem_free(addr, size, owner, pool.in_use)
        hooks.flush_staged()            # this thread's pool events of the run
        if step is not None:
            hooks.step_end(step, samples)
        return results

    def _launch(self, lo: int, hi: int) -> None:
        """Launch ops ``lo`` to ``hi`` (exclusive) of the schedule."""
        stream, pool = self.device.compute, self.device.pool
        put, sid, seq, in_use = stream.put, stream.id, stream.seq, pool.in_use
        peak, mem_batch = pool.peak, hooks.mem_batch
        whole = lo == 0 and hi == len(self.steps)
        steps = self.steps if whole else self.steps[lo:hi]
        mem = self.mem_before if whole else self.mem_before[lo:hi]
        try:
            for (op_id, kernel, _, _), batches in zip(steps, mem):
                for delta, args in batches:
                    mem_batch(in_use, *args)
                    in_use += delta
                if in_use > peak:
                    peak = in_use
                seq += 1
                t_launch = hooks.now_ns()
                hooks.kernel_launch(op_id, sid, seq)
                put((op_id, seq, t_launch, kernel))
            if hi == len(self.steps):
                for delta, args in self.mem_after:
                    mem_batch(in_use, *args)
                    in_use += delta
        finally:
            stream.seq, pool.in_use, pool.peak = seq, in_use, peak

    def _launch_streams(self, lo: int, hi: int) -> None:
        dev = self.device
        pool, streams = dev.pool, (dev.compute, dev.comm)
        seqs = [streams[0].seq, streams[1].seq]
        in_use, peak, mem_batch = pool.in_use, pool.peak, hooks.mem_batch
        # A threaded communication stream gets its items when the launch
        # loop ends: woken at its first item, its thread would take the GIL
        # (and on a busy machine the core) from the launching host, item
        # after item; its first collective waits on compute launched in the
        # same loop anyway, or on nothing but the loop.  (An inline stream
        # runs each item as it is put: a wait must find its release there.)
        comm_items = []
        puts = (streams[0].put, comm_items.append if streams[1].threaded else streams[1].put)
        try:
            for (op_id, kernel, _, _), (sid, wait), batches in zip(
                    self.steps[lo:hi], self.lanes[lo:hi], self.mem_before[lo:hi]):
                if wait and streams[1 - sid].done != seqs[1 - sid]:
                    # the other stream still has launched kernels to run:
                    # this one waits for them (a lock it releases at the marker)
                    ready = allocate_lock()
                    ready.acquire()
                    puts[1 - sid]((-1, 0, 0, ready.release))
                    puts[sid]((-1, 0, 0, ready.acquire))
                for delta, args in batches:
                    mem_batch(in_use, *args)
                    in_use += delta
                if in_use > peak:
                    peak = in_use
                seqs[sid] += 1
                t_launch = hooks.now_ns()
                hooks.kernel_launch(op_id, sid, seqs[sid])
                puts[sid]((op_id, seqs[sid], t_launch, kernel))
            if hi == len(self.steps):
                for delta, args in self.mem_after:
                    mem_batch(in_use, *args)
                    in_use += delta
        finally:
            put = streams[1].put
            for item in comm_items:
                put(item)
            streams[0].seq, streams[1].seq = seqs
            pool.in_use, pool.peak = in_use, peak

    def _leak(self) -> None:
        """MSRT_LEAK_BYTES: a block per step that is never freed, allocated
        while the graph's last op is launched (after the ops before it,
        before its own buffers) and carrying that op's id: the allocating
        op a leak report should name."""
        block = self.device.pool.alloc_persistent((knobs.LEAK_BYTES,), np.uint8,
                                                  op_id=self.steps[-1].op_id)
        self.leaked.append(block)
