"""Max and average pooling (NCHW, no padding) and their backward ops.

A pooling window of k x k is k*k strided slabs of the input, one per tap;
each kernel is a short loop of whole-array numpy calls over those slabs.
"""
from __future__ import annotations

import numpy as np

from msprof.runtime.graph import builder
from msprof.runtime.primitive import Primitive


def _infer(op):
    n, c, h, w = op.inputs[0].shape
    k, s = op.attrs["kernel"], op.attrs["stride"]
    if h < k or w < k:
        raise ValueError(f"{op.type} window {k} larger than input {op.inputs[0].shape}")
    return [((n, c, (h - k) // s + 1, (w - k) // s + 1), np.float32)]


def _taps(x, k, s, oh, ow):
    """The k*k strided views of x whose elementwise max/mean is the pool."""
    return [x[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]
            for i in range(k) for j in range(k)]


class MaxPool(Primitive):
    type = "MaxPool"
    infer = staticmethod(_infer)

    @staticmethod
    def flops(op):
        return op.outputs[0].size * op.attrs["kernel"] ** 2

    @staticmethod
    def bind(op, ins, outs, ws):
        out = outs[0]
        first, *rest = _taps(ins[0], op.attrs["kernel"], op.attrs["stride"], *out.shape[2:])

        def max_pool():
            np.copyto(out, first)
            for tap in rest:
                np.maximum(out, tap, out=out)
        return max_pool

    @staticmethod
    def grad(op, douts, needs):
        return [builder().add(MaxPoolGrad, (op.inputs[0], op.outputs[0], douts[0]), **op.attrs)]


class MaxPoolGrad(Primitive):
    """dx: dy goes to the first tap of each window holding the max."""
    type = "MaxPoolGrad"

    @staticmethod
    def infer(op):
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def flops(op):
        return op.inputs[2].size * op.attrs["kernel"] ** 2

    @staticmethod
    def workspace(op):
        shape = op.inputs[1].shape
        return [(shape, np.bool_), (shape, np.bool_)]

    @staticmethod
    def bind(op, ins, outs, ws):
        x, y, dy = ins
        dx = outs[0]
        taken, hit = ws
        k, s = op.attrs["kernel"], op.attrs["stride"]
        pairs = list(zip(_taps(x, k, s, *y.shape[2:]), _taps(dx, k, s, *y.shape[2:])))
        # Windows that do not overlap own their taps: assign instead of add.
        disjoint = s >= k

        def max_pool_grad():
            dx.fill(0.0)
            taken.fill(False)
            for xs, dxs in pairs:
                np.equal(xs, y, out=hit)
                np.greater(hit, taken, out=hit)       # hit and not yet taken
                np.logical_or(taken, hit, out=taken)
                if disjoint:
                    np.multiply(dy, hit, out=dxs)
                else:
                    np.add(dxs, dy, out=dxs, where=hit)
        return max_pool_grad


class AvgPool(Primitive):
    type = "AvgPool"
    infer = staticmethod(_infer)

    @staticmethod
    def flops(op):
        return op.outputs[0].size * op.attrs["kernel"] ** 2

    @staticmethod
    def bind(op, ins, outs, ws):
        out = outs[0]
        k = op.attrs["kernel"]
        first, *rest = _taps(ins[0], k, op.attrs["stride"], *out.shape[2:])
        scale = np.float32(1.0 / (k * k))

        def avg_pool():
            np.copyto(out, first)
            for tap in rest:
                np.add(out, tap, out=out)
            np.multiply(out, scale, out=out)
        return avg_pool

    @staticmethod
    def grad(op, douts, needs):
        return [builder().add(AvgPoolGrad, (douts[0],), x_shape=op.inputs[0].shape, **op.attrs)]


class AvgPoolGrad(Primitive):
    """dx: each window's dy spread evenly over its k*k taps."""
    type = "AvgPoolGrad"

    @staticmethod
    def infer(op):
        return [(op.attrs["x_shape"], np.float32)]

    @staticmethod
    def flops(op):
        return op.inputs[0].size * op.attrs["kernel"] ** 2

    @staticmethod
    def workspace(op):
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        dy, dx, share = ins[0], outs[0], ws[0]
        k = op.attrs["kernel"]
        taps = _taps(dx, k, op.attrs["stride"], *dy.shape[2:])
        scale = np.float32(1.0 / (k * k))

        def avg_pool_grad():
            np.multiply(dy, scale, out=share)
            dx.fill(0.0)
            for tap in taps:
                np.add(tap, share, out=tap)
        return avg_pool_grad
