"""Operator-level model parallel: a Dense's MatMul split across the ranks.

``dense.shard(strategy)`` takes MindSpore's MatMul strategy for
``x @ weight.T``: ((x rows, x features), (weight out, weight in)), each entry
1 or the number of ranks N.

* ((1, 1), (N, 1)), column split: rank r holds rows r of the weight (its
  share of the output features) and of the bias.  x enters through an
  identity whose gradient is an AllReduce (each rank's dx is a partial
  sum); the activation runs on the shard; an AllGather along the features
  makes the output whole again.
* ((1, N), (1, N)), row split: rank r holds its block of the input
  features.  x is sliced locally (the gradient of the slice is an
  AllGather), the partial products are summed by an AllReduce, and the
  (whole) bias is added after it.

So a sharded layer takes and returns replicated tensors and composes with
anything.  ``shard`` slices the parameters at once (they are created whole,
with the seed, so N ranks start from the one-rank weights); a strategy that
does not fit is reported when the graph is compiled, naming the op.
"""
from __future__ import annotations

import numpy as np

from msprof.runtime import functional as F
from msprof.runtime.comm import get_group_size, get_rank
from msprof.runtime.graph import builder
from msprof.runtime.ops_comm import AllGather, AllReduce, ShardSlice
from msprof.runtime.primitive import Primitive
from msprof.runtime.tensor import Parameter


class ShardStrategyError(ValueError):
    """A shard strategy that does not fit its op or the job."""


class ReplicatedInput(Primitive):
    """Identity forward; the gradient is summed over the ranks (AllReduce),
    since each rank's shard of the weights contributes part of dx."""
    type = "Identity"

    @staticmethod
    def infer(op):
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        x, y = ins[0], outs[0]
        return lambda: np.copyto(y, x)

    @staticmethod
    def grad(op, douts, needs):
        return [builder().add(AllReduce, (douts[0],), mean=False)]


def classify(strategy, n: int) -> str:
    """"column", "row" or "replicated"; raises ShardStrategyError (without
    the op's name, which the caller adds) for anything else."""
    try:
        (xr, xc), (wo, wi) = strategy
    except (TypeError, ValueError):
        raise ShardStrategyError(f"strategy {strategy!r} is not ((x rows, x features), "
                                 f"(weight out, weight in))") from None
    if any(v not in (1, n) for v in (xr, xc, wo, wi)):
        raise ShardStrategyError(f"strategy {strategy!r}: each entry must be 1 or the "
                                 f"number of ranks ({n})")
    if xc != wi:
        raise ShardStrategyError(f"strategy {strategy!r} splits the contracted dimension "
                                 f"{xc} ways in x but {wi} ways in the weight")
    if xr != 1:
        raise ShardStrategyError(f"strategy {strategy!r}: splitting x's rows is data "
                                 f"parallel; use parallel_mode='data_parallel'")
    if wo > 1 and wi > 1:
        raise ShardStrategyError(f"strategy {strategy!r} splits both weight dimensions")
    return "column" if wo > 1 else "row" if wi > 1 else "replicated"


def shard_dense(dense, strategy) -> None:
    """Record the strategy on the Dense and keep this rank's parameter slices."""
    n, r = get_group_size(), get_rank()
    dense.shard_strategy, dense.shard_error = strategy, None
    try:
        kind = classify(strategy, n)
        out, inp = dense.weight.shape
        if kind == "column" and out % n or kind == "row" and inp % n:
            dim = out if kind == "column" else inp
            raise ShardStrategyError(f"strategy {strategy!r}: {dim} features do not split "
                                     f"{n} ways")
    except ShardStrategyError as e:
        dense.shard_error, dense.shard_kind = e, "replicated"
        return
    dense.shard_kind = kind
    if kind == "column":
        dense.weight = _slice(dense.weight, 0, n, r)
        if dense.bias is not None:
            dense.bias = _slice(dense.bias, 0, n, r)
    elif kind == "row":
        dense.weight = _slice(dense.weight, 1, n, r)


def _slice(param: Parameter, axis: int, n: int, r: int) -> Parameter:
    block = np.split(param.data, n, axis=axis)[r]
    return Parameter(np.ascontiguousarray(block), name=param.name,
                     requires_grad=param.requires_grad)


def sharded_dense(dense, x):
    """The sharded Dense's ops, with the comm ops its strategy needs."""
    b = builder()
    if dense.shard_error is not None:
        path = "/".join(b._scope + ["MatMul"])
        raise ShardStrategyError(f"{path}: {dense.shard_error}")
    x = b.value(x)
    n = get_group_size()
    if dense.shard_kind == "column":
        x = b.add(ReplicatedInput, (x,))
        y = F.matmul(x, dense.weight, transpose_b=True)
        if dense.bias is not None:
            y = F.bias_add(y, dense.bias)
        if dense.activation is not None:
            y = dense.activation(y)
        return b.add(AllGather, (y,), axis=1, size=n)
    if x.shape[1] % n:
        raise ShardStrategyError(f"{'/'.join(b._scope + ['MatMul'])}: input features "
                                 f"{x.shape[1]} do not split {n} ways")
    x = b.add(ShardSlice, (x,), axis=1, size=n)
    y = b.add(AllReduce, (F.matmul(x, dense.weight, transpose_b=True),), mean=False)
    if dense.bias is not None:
        y = F.bias_add(y, dense.bias)
    return dense.activation(y) if dense.activation is not None else y
