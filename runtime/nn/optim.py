"""Optimizers: SGD, Momentum, Adam.

An optimizer is a cell whose construct turns (parameter, gradient) pairs
into update ops, so the update is part of the step's graph.  Its state
(momentum accumulators, Adam moments) is Parameters, persistent in the
device pool like the weights.  The learning rate is a 0-d Parameter too:
``learning_rate`` may be a number, or a callable step -> rate (a schedule),
which the train step writes into it before each step.
"""
from __future__ import annotations

import numpy as np

from msprof.runtime import functional as F
from msprof.runtime.nn.cell import Cell
from msprof.runtime.tensor import Parameter


class Optimizer(Cell):
    def __init__(self, params, learning_rate):
        super().__init__()
        self.parameters = list(params)      # a list: not registered as this cell's own
        if not self.parameters:
            raise ValueError("the optimizer got no parameters")
        self.schedule = learning_rate if callable(learning_rate) else None
        first = self.schedule(0) if self.schedule else learning_rate
        self.learning_rate = Parameter(np.array(first, np.float32), name="learning_rate",
                                       requires_grad=False)

    def _state(self, prefix):
        return [Parameter(np.zeros(p.shape, np.float32), name=f"{prefix}.{p.name}",
                          requires_grad=False) for p in self.parameters]

    def before_step(self, step: int) -> None:
        """Host side, between steps (the stream is idle): apply the schedule."""
        if self.schedule is not None:
            self.learning_rate.set_data(self.schedule(step))

    def construct(self, grads):
        for i, (p, g) in enumerate(zip(self.parameters, grads)):
            if g is not None:
                self.update(i, p, g)

    def update(self, i, param, grad):
        raise NotImplementedError


class SGD(Optimizer):
    def update(self, i, param, grad):
        F.apply_gradient_descent(param, self.learning_rate, grad)


class Momentum(Optimizer):
    def __init__(self, params, learning_rate, momentum=0.9):
        super().__init__(params, learning_rate)
        self.momentum = float(momentum)
        self.moments = self._state("moments")

    def update(self, i, param, grad):
        F.apply_momentum(param, self.moments[i], self.learning_rate, grad,
                         momentum=self.momentum)


class Adam(Optimizer):
    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(params, learning_rate)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.moment1 = self._state("moment1")
        self.moment2 = self._state("moment2")
        # beta1^t and beta2^t per parameter, advanced by the Adam op itself.
        self.powers = [Parameter(np.ones(2, np.float32), name=f"beta_power.{p.name}",
                                 requires_grad=False) for p in self.parameters]

    def update(self, i, param, grad):
        F.adam(param, self.moment1[i], self.moment2[i], self.powers[i], self.learning_rate,
               grad, beta1=self.beta1, beta2=self.beta2, eps=self.eps)


def cosine_decay(base: float, total_steps: int, final: float = 0.0):
    """A schedule: base -> final along half a cosine over total_steps."""
    def rate(step: int) -> float:
        t = min(step, total_steps) / max(total_steps, 1)
        return final + (base - final) * 0.5 * (1.0 + np.cos(np.pi * t))
    return rate
