"""Wrappers that make a training step out of a network: WithLossCell and
TrainOneStepCell (forward, autodiff and optimizer captured as one graph)."""
from __future__ import annotations

import os
import sys

from msprof.runtime import knobs
from msprof.runtime.autodiff import gradients
from msprof.runtime.device import get_device
from msprof.runtime.graph import builder
from msprof.runtime.nn.cell import Cell
from msprof.runtime.ops_math import Fill
from msprof.runtime.parallel import data_parallel


class WithLossCell(Cell):
    """loss_fn(net(data), label); the backbone keeps its "net" scope."""
    transparent = True

    def __init__(self, backbone, loss_fn):
        super().__init__()
        self.net = backbone
        self.loss = loss_fn

    def construct(self, data, label):
        return self.loss(self.net(data), label)


class TrainOneStepCell(Cell):
    """One call = one training step: returns the loss, updates the weights.

    Each call outside a capture is step ``self.step`` (counted from 0) and
    is bracketed by the step_begin/step_end probes.
    """
    transparent = True

    def __init__(self, network, optimizer):
        super().__init__()
        self.network = network
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.step = 0

    def construct(self, *inputs):
        loss = self.network(*inputs)
        grads = gradients(loss, self.weights)
        if data_parallel.enabled():
            grads, loss = data_parallel.reduce_gradients(grads, loss)
        if knobs.TINY_OPS:
            _tiny_ops(knobs.TINY_OPS)
        self.optimizer(grads)
        return loss

    def _next_step(self):
        step, self.step = self.step, self.step + 1
        if step == knobs.CRASH_STEP:
            _maybe_crash(step)
        self.optimizer.before_step(step)
        return step


def _tiny_ops(n: int) -> None:
    """MSRT_TINY_OPS: n one-element ops, all launch overhead and no work."""
    b = builder()
    with b.scope_as("net/tiny"):
        for _ in range(n):
            b.add(Fill, (), shape=(1,), value=0.0)


def _maybe_crash(step: int) -> None:
    """MSRT_CRASH_RANK / MSRT_CRASH_STEP: that rank dies at once, as on a
    hardware fault (no cleanup, no MPI_Finalize)."""
    rank = get_device().rank
    if rank == knobs.CRASH_RANK:
        print(f"rank {rank}: crashing at step {step} (MSRT_CRASH_RANK)", file=sys.stderr,
              flush=True)
        os._exit(knobs.CRASH_EXIT_CODE)
