"""Optimizers: SGD, Momentum, Adam.

An optimizer is a cell whose construct turns (parameter, gradient) pairs
into update ops, so the update is part of the step's graph.  Its state
(momentum accumulators, Adam moments) is Parameters, persistent in the
device pool like the weights.
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
        self.learning_rate = float(learning_rate)

    def _state(self, prefix):
        return [Parameter(np.zeros(p.shape, np.float32), name=f"{prefix}.{p.name}",
                          requires_grad=False) for p in self.parameters]

    def construct(self, grads):
        for i, (p, g) in enumerate(zip(self.parameters, grads)):
            if g is not None:
                self.update(i, p, g)

    def update(self, i, param, grad):
        raise NotImplementedError


class SGD(Optimizer):
    def update(self, i, param, grad):
        F.apply_gradient_descent(param, grad, lr=self.learning_rate)


class Momentum(Optimizer):
    def __init__(self, params, learning_rate, momentum=0.9):
        super().__init__(params, learning_rate)
        self.momentum = float(momentum)
        self.moments = self._state("moments")

    def update(self, i, param, grad):
        F.apply_momentum(param, self.moments[i], grad, lr=self.learning_rate,
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
        F.adam(param, self.moment1[i], self.moment2[i], self.powers[i], grad,
               lr=self.learning_rate, beta1=self.beta1, beta2=self.beta2, eps=self.eps)
