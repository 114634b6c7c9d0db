"""Parameter updates as ops: ApplyGradientDescent, ApplyMomentum, Adam.

They write their parameter (and state) buffers in place and produce no
output, so the optimizer is part of the step's op list like any kernel.
The learning rate is an input (a 0-d Parameter the host may change between
steps, for schedules); the other hyper-parameters are attributes, fixed
when the graph is compiled.
"""
from __future__ import annotations

import numpy as np

from msprof.runtime.primitive import Primitive


class ApplyGradientDescent(Primitive):
    """var -= lr * grad."""
    type = "ApplyGradientDescent"
    inplace = (0,)

    @staticmethod
    def infer(op):
        return []

    @staticmethod
    def flops(op):
        return 2 * op.inputs[0].size

    @staticmethod
    def workspace(op):
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        var, lr, grad = ins
        step = ws[0]

        def apply_gradient_descent():
            np.multiply(grad, lr, out=step)
            np.subtract(var, step, out=var)
        return apply_gradient_descent


class ApplyMomentum(Primitive):
    """accum = momentum * accum + grad; var -= lr * accum (MindSpore's rule)."""
    type = "ApplyMomentum"
    inplace = (0, 1)

    @staticmethod
    def infer(op):
        return []

    @staticmethod
    def flops(op):
        return 4 * op.inputs[0].size

    @staticmethod
    def workspace(op):
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        var, accum, lr, grad = ins
        step = ws[0]
        mom = np.float32(op.attrs["momentum"])

        def apply_momentum():
            np.multiply(accum, mom, out=accum)
            np.add(accum, grad, out=accum)
            np.multiply(accum, lr, out=step)
            np.subtract(var, step, out=var)
        return apply_momentum


class Adam(Primitive):
    """Adam with bias correction; state holds the running beta1^t, beta2^t."""
    type = "Adam"
    inplace = (0, 1, 2, 3)

    @staticmethod
    def infer(op):
        return []

    @staticmethod
    def flops(op):
        return 10 * op.inputs[0].size

    @staticmethod
    def workspace(op):
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        var, m, v, powers, lr, grad = ins
        tmp = ws[0]
        a = op.attrs
        b1, b2, eps = (np.float32(a[k]) for k in ("beta1", "beta2", "eps"))
        betas = np.array([b1, b2], dtype=np.float32)

        def adam():
            np.multiply(powers, betas, out=powers)
            np.multiply(m, b1, out=m)
            np.multiply(grad, 1 - b1, out=tmp)
            np.add(m, tmp, out=m)
            np.multiply(v, b2, out=v)
            np.multiply(grad, grad, out=tmp)
            np.multiply(tmp, 1 - b2, out=tmp)
            np.add(v, tmp, out=v)
            # var -= lr_t * m / (sqrt(v) + eps * sqrt(1 - b2^t)), with
            # lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t): the usual bias correction.
            c2 = np.sqrt(1 - powers[1])
            lr_t = lr[()] * c2 / (1 - powers[0])
            np.sqrt(v, out=tmp)
            np.add(tmp, eps * c2, out=tmp)
            np.divide(m, tmp, out=tmp)
            np.multiply(tmp, lr_t, out=tmp)
            np.subtract(var, tmp, out=var)
        return adam


class AssignAdd(Primitive):
    """acc += x: gradient accumulation over micro-batches."""
    type = "AssignAdd"
    inplace = (0,)

    @staticmethod
    def infer(op):
        acc, x = op.inputs
        if acc.shape != x.shape:
            raise ValueError(f"AssignAdd {x.shape} into {acc.shape}")
        return []

    @staticmethod
    def flops(op):
        return op.inputs[0].size

    @staticmethod
    def bind(op, ins, outs, ws):
        acc, x = ins
        return lambda: np.add(acc, x, out=acc)


class ZeroFill(Primitive):
    """acc[...] = 0: an accumulator reset after the update read it."""
    type = "ZeroFill"
    inplace = (0,)

    @staticmethod
    def infer(op):
        return []

    @staticmethod
    def bind(op, ins, outs, ws):
        return lambda: ins[0].fill(0)
