"""Communication ops: collectives as graph ops, run on the comm stream (id 1).

Each kernel works on the op's pool buffers (inputs, outputs, one packed
workspace) and calls the world's collective, which fires comm_begin/comm_end;
the stream fires kernel_begin/kernel_end around it like any kernel.  Their
gradients are the usual duals: allgather <-> slice or reduce-scatter,
allreduce of partial sums -> identity.
"""
from __future__ import annotations

import numpy as np

from msprof.runtime.comm import WORLD, world
from msprof.runtime.graph import builder
from msprof.runtime.primitive import Primitive
from msprof.runtime.stream import COMM, COMPUTE


def _add(prim, ins, **attrs):
    return builder().add(prim, ins, **attrs)


class AllReduce(Primitive):
    """Sum (or mean) each input over the group: the inputs travel as one
    packed buffer (a gradient bucket), one collective per op.  A single
    input is reduced straight into the output, in place (``MPI.IN_PLACE``)
    where the compiler gave the output the input's buffer."""
    type = "AllReduce"
    stream = COMM
    may_alias = True

    @staticmethod
    def infer(op):
        return [(v.shape, np.float32) for v in op.inputs]

    @staticmethod
    def workspace(op):
        if len(op.inputs) == 1:          # reduced straight into the output
            return []
        return [((sum(v.size for v in op.inputs),), np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        w, group = world(), op.attrs.get("group", WORLD)
        scale = np.float32(1.0 / w.size) if op.attrs.get("mean") else None
        if len(ins) == 1:
            x, y = ins[0], outs[0]
            allreduce = w.allreduce
            if np.may_share_memory(x, y):          # one buffer: reduce in place
                if scale is None:
                    return lambda: allreduce(y, group)

                def allreduce_in_place():
                    allreduce(y, group)
                    np.multiply(y, scale, out=y)
                return allreduce_in_place

            def allreduce_one():
                allreduce(x, group, out=y)
                if scale is not None:
                    np.multiply(y, scale, out=y)
            return allreduce_one
        flat = ws[0]
        parts, at = [], 0
        for x, y in zip(ins, outs):
            parts.append((x, y, flat[at:at + x.size].reshape(x.shape)))
            at += x.size

        def allreduce():
            for x, _, part in parts:
                np.copyto(part, x)
            w.allreduce(flat, group)
            if scale is not None:
                np.multiply(flat, scale, out=flat)
            for _, y, part in parts:
                np.copyto(y, part)
        return allreduce

    @staticmethod
    def grad(op, douts, needs):
        # Partial sums made whole: each rank's share of the sum gets dy as is.
        return list(douts)


def _blocks(x, axis, n):
    """x moved so that its ``axis`` is split into n leading blocks."""
    shape = x.shape[:axis] + (n, x.shape[axis] // n) + x.shape[axis + 1:]
    return np.moveaxis(x.reshape(shape), axis, 0)


class AllGather(Primitive):
    """Concatenate every rank's input along ``axis``, in rank order."""
    type = "AllGather"
    stream = COMM

    @staticmethod
    def infer(op):
        x, n, axis = op.inputs[0], op.attrs["size"], op.attrs["axis"]
        shape = list(x.shape)
        shape[axis] *= n
        return [(tuple(shape), np.float32)]

    @staticmethod
    def workspace(op):
        x = op.inputs[0]
        return [((op.attrs["size"],) + x.shape, np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        x, out, gathered, w = ins[0], outs[0], ws[0], world()
        blocks, group = _blocks(out, op.attrs["axis"], op.attrs["size"]), op.attrs.get("group", WORLD)

        def allgather():
            w.allgather(x, gathered, group)
            np.copyto(blocks, gathered)
        return allgather

    @staticmethod
    def grad(op, douts, needs):
        # Downstream runs replicated, so every rank holds the same dy: its
        # gradient is its own block, no communication.
        return [_add(ShardSlice, (douts[0],), axis=op.attrs["axis"], size=op.attrs["size"])]


class ReduceScatter(Primitive):
    """Sum over the group, each rank keeping its block along ``axis``."""
    type = "ReduceScatter"
    stream = COMM

    @staticmethod
    def infer(op):
        x, n, axis = op.inputs[0], op.attrs["size"], op.attrs["axis"]
        if x.shape[axis] % n:
            raise ValueError(f"ReduceScatter: axis {axis} of {x.shape} does not split {n} ways")
        shape = list(x.shape)
        shape[axis] //= n
        return [(tuple(shape), np.float32)]

    @staticmethod
    def workspace(op):
        return [((op.inputs[0].size,), np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        x, out, packed, w = ins[0], outs[0], ws[0], world()
        n, axis, group = op.attrs["size"], op.attrs["axis"], op.attrs.get("group", WORLD)
        blocks = _blocks(x, axis, n)
        packed_blocks = packed.reshape(blocks.shape)

        def reduce_scatter():
            np.copyto(packed_blocks, blocks)
            w.reduce_scatter(packed, out, group)
        return reduce_scatter

    @staticmethod
    def grad(op, douts, needs):
        return [_add(AllGather, (douts[0],), axis=op.attrs["axis"], size=op.attrs["size"])]


class Broadcast(Primitive):
    """Every rank gets the root's input."""
    type = "Broadcast"
    stream = COMM

    @staticmethod
    def infer(op):
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        x, y, w, root = ins[0], outs[0], world(), op.attrs["root"]
        group = op.attrs.get("group", WORLD)

        def broadcast():
            np.copyto(y, x)
            w.broadcast(y, root, group)
        return broadcast


class Send(Primitive):
    """Send the input to rank ``peer`` (blocking on the comm stream)."""
    type = "Send"
    stream = COMM

    @staticmethod
    def infer(op):
        return []

    @staticmethod
    def bind(op, ins, outs, ws):
        x, w, peer, group = ins[0], world(), op.attrs["peer"], op.attrs.get("group", WORLD)
        return lambda: w.send(x, peer, group)


class Recv(Primitive):
    """Receive a tensor of the given shape from rank ``peer``."""
    type = "Recv"
    stream = COMM

    @staticmethod
    def infer(op):
        return [(tuple(op.attrs["shape"]), np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        y, w, peer, group = outs[0], world(), op.attrs["peer"], op.attrs.get("group", WORLD)
        return lambda: w.recv(y, peer, group)


class ShardSlice(Primitive):
    """This rank's block of the input along ``axis`` (a local op: a
    replicated tensor becomes a split one without communication)."""
    type = "ShardSlice"
    stream = COMPUTE

    @staticmethod
    def infer(op):
        x, n, axis = op.inputs[0], op.attrs["size"], op.attrs["axis"]
        if x.shape[axis] % n:
            raise ValueError(f"ShardSlice: axis {axis} of {x.shape} does not split {n} ways")
        shape = list(x.shape)
        shape[axis] //= n
        return [(tuple(shape), np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        n, axis = op.attrs["size"], op.attrs["axis"]
        block = _blocks(ins[0], axis, n)[world().rank]
        out = outs[0]
        return lambda: np.copyto(out, block)

    @staticmethod
    def grad(op, douts, needs):
        return [_add(AllGather, (douts[0],), axis=op.attrs["axis"], size=op.attrs["size"])]
