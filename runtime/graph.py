"""The IR: symbolic values, ops and graphs, and the builder that captures them.

Graph mode captures a cell's ``construct`` once: while a GraphBuilder is
active, every functional op appends an ``Op`` to it and returns symbolic
``Value``s instead of computing anything.  Autodiff and the optimizer append
their ops to the same builder, so a training step is one op list.

Op ids come from one process-wide counter in capture order, so the same
script compiles the same graphs to the same ids on every run and every rank.
"""
from __future__ import annotations

import itertools
import math
from contextlib import contextmanager

import numpy as np

_op_ids = itertools.count(1)
_graph_ids = itertools.count(0)
_current: list["GraphBuilder"] = []   # a stack: compiling inside a compile is allowed


class Value:
    """A symbolic tensor of a graph: shape, dtype and where it comes from.

    kind is "input" (fed per run), "param" (a Parameter, persistent), "const"
    (captured numpy data, persistent) or "op" (the output of ``producer``).
    """
    __slots__ = ("shape", "dtype", "kind", "producer", "source", "id")

    def __init__(self, shape, dtype, kind, producer=None, source=None, id=0):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.kind, self.producer, self.source, self.id = kind, producer, source, id

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __repr__(self):
        return f"Value({self.kind}, {self.shape}, {self.dtype})"

    # Conveniences for construct(); the functional module holds the ops.
    def __add__(self, other):
        from msprof.runtime import functional as F
        return F.add(self, other)

    def __matmul__(self, other):
        from msprof.runtime import functional as F
        return F.matmul(self, other)

    def reshape(self, *shape):
        from msprof.runtime import functional as F
        return F.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape)


class Op:
    """One node of the graph: a primitive applied to values, at a scope."""
    __slots__ = ("id", "prim", "attrs", "inputs", "outputs", "scope", "flops", "bytes")

    def __init__(self, id, prim, attrs, inputs, scope):
        self.id, self.prim, self.attrs, self.inputs, self.scope = id, prim, attrs, inputs, scope
        self.outputs: list[Value] = []
        self.flops = self.bytes = 0

    @property
    def type(self) -> str:
        return self.prim.type

    @property
    def name(self) -> str:
        return f"{self.prim.type}-op{self.id}"

    @property
    def path(self) -> str:
        """The full scope path, MindSpore style: ``net/conv1/Conv2D-op3``."""
        return f"{self.scope}/{self.name}" if self.scope else self.name

    def __repr__(self):
        ins = ", ".join(str(v.shape) for v in self.inputs)
        outs = ", ".join(str(v.shape) for v in self.outputs)
        return f"{self.path}({ins}) -> ({outs})"


class Graph:
    """A captured graph: ops in execution order, its inputs, outputs and state."""

    def __init__(self, name, ops, inputs, outputs, params, consts):
        self.id = next(_graph_ids)
        self.name, self.ops, self.inputs, self.outputs = name, ops, inputs, outputs
        self.params = params     # [(Value, Parameter)] in first-use order
        self.consts = consts     # [(Value, np.ndarray)]

    def __repr__(self):
        return "\n".join([f"graph {self.id} {self.name}: {len(self.ops)} ops"] +
                         [f"  {op!r}" for op in self.ops])


class GraphBuilder:
    """Collects ops while a construct runs; ``with GraphBuilder(name) as b:``."""

    def __init__(self, name: str, root=None):
        self.name, self.root = name, root       # root: the cell being captured
        self.ops: list[Op] = []
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self._params: dict[int, tuple[Value, object]] = {}
        self._consts: list[tuple[Value, np.ndarray]] = []
        self._scope: list[str] = []
        self._values = itertools.count()

    def __enter__(self):
        _current.append(self)
        return self

    def __exit__(self, *exc):
        _current.pop()

    # -- values ---------------------------------------------------------------
    def input(self, shape, dtype=np.float32) -> Value:
        v = Value(shape, dtype, "input", id=next(self._values))
        self.inputs.append(v)
        return v

    def value(self, x) -> Value:
        """Turn what a construct passes around into a Value of this graph."""
        if isinstance(x, Value):
            return x
        from msprof.runtime.tensor import Parameter, Tensor
        if isinstance(x, Parameter):
            hit = self._params.get(id(x))
            if hit is None:
                hit = (Value(x.shape, x.dtype, "param", source=x, id=next(self._values)), x)
                self._params[id(x)] = hit
            return hit[0]
        data = x.asnumpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float32)
        v = Value(data.shape, data.dtype, "const", source=data, id=next(self._values))
        self._consts.append((v, data))
        return v

    # -- ops ------------------------------------------------------------------
    def add(self, prim, inputs, **attrs):
        """Append ``prim(inputs, attrs)``; returns its output Value(s)."""
        ins = [self.value(x) for x in inputs]
        op = Op(next(_op_ids), prim, attrs, ins, "/".join(self._scope))
        op.outputs = [Value(shape, dtype, "op", producer=op, id=next(self._values))
                      for shape, dtype in prim.infer(op)]
        op.flops = int(prim.flops(op))
        written = sum(ins[i].nbytes for i in prim.inplace)
        op.bytes = sum(v.nbytes for v in ins) + sum(v.nbytes for v in op.outputs) + written
        self.ops.append(op)
        return op.outputs[0] if len(op.outputs) == 1 else tuple(op.outputs)

    # -- scopes ---------------------------------------------------------------
    @contextmanager
    def scope(self, segment: str | None):
        """Nest the ops added inside under ``segment`` (None adds nothing)."""
        if segment:
            self._scope.append(segment)
        try:
            yield
        finally:
            if segment:
                self._scope.pop()

    @contextmanager
    def scope_as(self, path: str):
        """Put the ops added inside at exactly ``path`` (autodiff uses it)."""
        saved, self._scope = self._scope, [path] if path else []
        try:
            yield
        finally:
            self._scope = saved

    @property
    def depth(self) -> int:
        return len(self._scope)

    def finish(self, outputs) -> Graph:
        outs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
        self.outputs = [self.value(o) for o in outs]
        return Graph(self.name, self.ops, self.inputs, self.outputs,
                     list(self._params.values()), self._consts)


def current_builder() -> GraphBuilder | None:
    return _current[-1] if _current else None


def builder() -> GraphBuilder:
    if not _current:
        raise RuntimeError("ops build graphs: call them inside a Cell's construct "
                           "(graph mode), not on their own")
    return _current[-1]
