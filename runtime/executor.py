"""The executor: launches a compiled graph's op list on the compute stream.

Per op, on the host thread: allocate the op's buffers from the pool
(``mem_alloc`` each), take the launch time, ``kernel_launch``, enqueue,
then free the buffers whose last reader this op is (``mem_free`` each).
The stream thread brackets the kernel with ``kernel_begin`` and
``kernel_end``.  A training step is ``step_begin``, the launches, a stream
synchronize, the outputs copied out and freed, ``step_end``.

This loop is what the profiler's overhead is measured against, so it does
nothing per op but the probes, the accounting and one queue put; all the
planning happened at compile time.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from msprof.runtime import hooks


class Step(NamedTuple):
    """One op of the schedule, as the executor consumes it."""
    op_id: int
    kernel: object                      # zero-argument callable
    allocs: tuple                       # ((addr, size), ...) born at this op
    frees: tuple                        # ((addr, size, owner op id), ...) dying after it


class Executable:
    def __init__(self, graph, device, steps, feeds, outputs, arena):
        self.graph, self.device = graph, device
        self.steps = tuple(steps)
        self.feeds = feeds              # input buffers (pool views), in graph order
        self.outputs = outputs          # (view, addr, size, owner op id)
        self.arena = arena
        self.ops = graph.ops

    def __len__(self):
        return len(self.steps)

    def run(self, inputs, step: int | None = None) -> list[np.ndarray]:
        """Run once; ``step`` (a training step number) brackets the run with
        step_begin/step_end.  Returns copies of the outputs."""
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
        self._launch()
        stream = self.device.compute
        stream.synchronize()
        results = [view.copy() for view, _, _, _ in self.outputs]
        pool = self.device.pool
        for _, addr, size, owner in self.outputs:
            if addr >= 0:
                pool.in_use -= size
                hooks.mem_free(addr, size, owner, pool.in_use)
        if step is not None:
            hooks.step_end(step)
        return results

    def _launch(self) -> None:
        stream, pool = self.device.compute, self.device.pool
        put, sid, seq, in_use = stream.put, stream.id, stream.seq, pool.in_use
        peak = pool.peak
        try:
            for op_id, kernel, allocs, frees in self.steps:
                for addr, size in allocs:
                    in_use += size
                    hooks.mem_alloc(addr, size, op_id, in_use)
                if in_use > peak:
                    peak = in_use
                seq += 1
                t_launch = hooks.now_ns()
                hooks.kernel_launch(op_id, sid, seq)
                put((op_id, seq, t_launch, kernel))
                for addr, size, owner in frees:
                    in_use -= size
                    hooks.mem_free(addr, size, owner, in_use)
        finally:
            stream.seq, pool.in_use, pool.peak = seq, in_use, peak
