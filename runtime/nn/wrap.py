"""Wrappers that make a training step out of a network: WithLossCell and
TrainOneStepCell (forward, autodiff and optimizer captured as one graph)."""
from __future__ import annotations

from msprof.runtime.autodiff import gradients
from msprof.runtime.nn.cell import Cell


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
        self.optimizer(grads)
        return loss

    def _next_step(self):
        step, self.step = self.step, self.step + 1
        self.optimizer.before_step(step)
        return step
