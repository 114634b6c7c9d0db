"""Dense algebra ops: MatMul, BiasAdd, element-wise Add/AddN/Mul, Reshape, Fill."""
from __future__ import annotations

from functools import partial

import numpy as np

from msprof.runtime.graph import builder
from msprof.runtime.primitive import Primitive, nelem


def _add(prim, ins, **attrs):
    return builder().add(prim, ins, **attrs)


class MatMul(Primitive):
    """out = op(a) @ op(b), op transposing when transpose_a/transpose_b is set."""
    type = "MatMul"

    @staticmethod
    def infer(op):
        a, b = op.inputs
        ta, tb = op.attrs["transpose_a"], op.attrs["transpose_b"]
        m, k = a.shape[::-1] if ta else a.shape
        k2, n = b.shape[::-1] if tb else b.shape
        if k != k2 or a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"MatMul shapes {a.shape} x {b.shape} (ta={ta}, tb={tb})")
        return [((m, n), np.float32)]

    @staticmethod
    def flops(op):
        a = op.inputs[0]
        k = a.shape[0] if op.attrs["transpose_a"] else a.shape[1]
        return 2 * nelem(op.outputs[0].shape) * k

    @staticmethod
    def bind(op, ins, outs, ws):
        a, b = ins
        a = a.T if op.attrs["transpose_a"] else a
        b = b.T if op.attrs["transpose_b"] else b
        return partial(np.matmul, a, b, out=outs[0])

    @staticmethod
    def grad(op, douts, needs):
        # y = A' B' with A' = op(a), B' = op(b): dA' = dy B'^T, dB' = A'^T dy,
        # and a transposed operand takes the transpose of its gradient.
        (dy,), (a, b) = douts, op.inputs
        ta, tb = op.attrs["transpose_a"], op.attrs["transpose_b"]
        da = db = None
        if needs[0]:
            da = (_add(MatMul, (b, dy), transpose_a=tb, transpose_b=True) if ta else
                  _add(MatMul, (dy, b), transpose_a=False, transpose_b=not tb))
        if needs[1]:
            db = (_add(MatMul, (dy, a), transpose_a=True, transpose_b=ta) if tb else
                  _add(MatMul, (a, dy), transpose_a=not ta, transpose_b=False))
        return [da, db]


class BiasAdd(Primitive):
    """out = x + b, b broadcast along axis 1 (the channel axis)."""
    type = "BiasAdd"

    @staticmethod
    def infer(op):
        x, b = op.inputs
        if b.shape != (x.shape[1],):
            raise ValueError(f"BiasAdd bias {b.shape} for input {x.shape}")
        return [(x.shape, np.float32)]

    @staticmethod
    def flops(op):
        return op.inputs[0].size

    @staticmethod
    def bind(op, ins, outs, ws):
        x, b = ins
        return partial(np.add, x, b.reshape((1, -1) + (1,) * (x.ndim - 2)), out=outs[0])

    @staticmethod
    def grad(op, douts, needs):
        dy = douts[0]
        return [dy if needs[0] else None, _add(BiasAddGrad, (dy,)) if needs[1] else None]


class BiasAddGrad(Primitive):
    """db = dy summed over every axis but the channel axis."""
    type = "BiasAddGrad"

    @staticmethod
    def infer(op):
        return [((op.inputs[0].shape[1],), np.float32)]

    @staticmethod
    def flops(op):
        return op.inputs[0].size

    @staticmethod
    def bind(op, ins, outs, ws):
        axes = (0,) + tuple(range(2, ins[0].ndim))
        return partial(np.sum, ins[0], axis=axes, out=outs[0])


class Add(Primitive):
    """out = a + b, same shapes."""
    type = "Add"

    @staticmethod
    def infer(op):
        a, b = op.inputs
        if a.shape != b.shape:
            raise ValueError(f"Add needs equal shapes, got {a.shape} and {b.shape}")
        return [(a.shape, np.float32)]

    @staticmethod
    def flops(op):
        return op.inputs[0].size

    @staticmethod
    def bind(op, ins, outs, ws):
        return partial(np.add, ins[0], ins[1], out=outs[0])

    @staticmethod
    def grad(op, douts, needs):
        return [douts[0] if n else None for n in needs]


class AddN(Primitive):
    """out = sum of n same-shaped inputs; autodiff uses it to accumulate."""
    type = "AddN"

    @staticmethod
    def infer(op):
        shapes = {v.shape for v in op.inputs}
        if len(shapes) != 1:
            raise ValueError(f"AddN needs equal shapes, got {shapes}")
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def flops(op):
        return (len(op.inputs) - 1) * op.inputs[0].size

    @staticmethod
    def bind(op, ins, outs, ws):
        out, first, rest = outs[0], ins[0], ins[1:]

        def addn():
            np.add(first, rest[0], out=out)
            for x in rest[1:]:
                np.add(out, x, out=out)
        return addn

    @staticmethod
    def grad(op, douts, needs):
        return [douts[0] if n else None for n in needs]


class Mul(Primitive):
    """out = x * s, s a tensor of one element (a loss scale, a sensitivity)."""
    type = "Mul"

    @staticmethod
    def infer(op):
        x, s = op.inputs
        if s.size != 1:
            raise ValueError(f"Mul scales by one element, got {s.shape}")
        return [(x.shape, np.float32)]

    @staticmethod
    def flops(op):
        return op.inputs[0].size

    @staticmethod
    def bind(op, ins, outs, ws):
        return partial(np.multiply, ins[0], ins[1].reshape(()), out=outs[0])

    @staticmethod
    def grad(op, douts, needs):
        if needs[1]:
            raise NotImplementedError("Mul: no gradient for the scale")
        return [_add(Mul, (douts[0], op.inputs[1])), None]


class Reshape(Primitive):
    """A copy into the new shape (buffers are not aliased, to keep lifetimes plain)."""
    type = "Reshape"

    @staticmethod
    def infer(op):
        x, shape = op.inputs[0], list(op.attrs["shape"])
        if -1 in shape:
            i = shape.index(-1)
            shape[i] = x.size // max(1, -nelem(shape))
        if nelem(shape) != x.size:
            raise ValueError(f"cannot reshape {x.shape} to {tuple(op.attrs['shape'])}")
        return [(tuple(shape), x.dtype)]

    @staticmethod
    def bind(op, ins, outs, ws):
        return partial(np.copyto, outs[0], ins[0].reshape(outs[0].shape))

    @staticmethod
    def grad(op, douts, needs):
        return [_add(Reshape, (douts[0],), shape=op.inputs[0].shape)]


class Fill(Primitive):
    """out = value everywhere (the ones that seed a backward pass)."""
    type = "Fill"

    @staticmethod
    def infer(op):
        return [(op.attrs["shape"], np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        return partial(outs[0].fill, op.attrs["value"])
