"""Data parallel: gradient buckets allreduced on the comm stream during backward.

Every rank holds the whole model and takes its share of the global batch.
After autodiff has appended the backward ops, ``reduce_gradients`` groups
the gradients into buckets of about ``bucket_bytes``, in the order backward
produces them, and appends one AllReduce (mean) per bucket.  With overlap on
(the default) each bucket's op is then moved to just after the op that
produces its last gradient: the host launches it there, the comm stream waits
for that point of the compute stream and reduces while the rest of backward
runs.  With overlap off every bucket runs after backward, for comparison.
The loss is averaged the same way, so every rank reports the global loss.
"""
from __future__ import annotations

from msprof.runtime.graph import builder
from msprof.runtime.ops_comm import AllReduce
from msprof.runtime.parallel.context import ParallelMode, get_auto_parallel_context


def enabled() -> bool:
    return (get_auto_parallel_context("parallel_mode") == ParallelMode.DATA_PARALLEL
            and get_auto_parallel_context("pipeline_stages") <= 1)


def buckets(grads, ready, bucket_bytes: int) -> list[list[int]]:
    """Indices of ``grads`` grouped in ready order; a bucket closes once it
    holds ``bucket_bytes`` (so one bigger gradient gets a bucket of its own)."""
    order = sorted((i for i, g in enumerate(grads) if g is not None), key=lambda i: ready[i])
    out, size = [[]], 0
    for i in order:
        if out[-1] and size >= bucket_bytes:
            out.append([])
            size = 0
        out[-1].append(i)
        size += grads[i].nbytes
    return [bk for bk in out if bk]


def reduce_gradients(grads: list, loss):
    """(averaged grads, averaged loss): the bucketed allreduce ops appended
    to the graph being captured and scheduled as the context says."""
    b = builder()
    position = {id(op): i for i, op in enumerate(b.ops)}
    ready = [position[id(g.producer)] if g is not None and g.producer is not None else -1
             for g in grads]
    n_before = len(b.ops)
    out = list(grads)
    mean = get_auto_parallel_context("gradients_mean")
    with b.scope_as("Gradients/AllReduce"):
        loss = b.add(AllReduce, (loss,), mean=True)
        after, loss_op = {}, b.ops[-1]
        after[id(loss_op)] = position.get(id(loss_op.inputs[0].producer), n_before - 1)
        for bucket in buckets(grads, ready, get_auto_parallel_context("bucket_bytes")):
            reduced = b.add(AllReduce, [grads[i] for i in bucket], mean=mean)
            reduced = reduced if isinstance(reduced, tuple) else (reduced,)
            for i, r in zip(bucket, reduced):
                out[i] = r
            after[id(b.ops[-1])] = max(ready[i] for i in bucket)
    if get_auto_parallel_context("overlap"):
        _schedule_early(b, n_before, after)
    return out, loss


def _schedule_early(b, n_before: int, after: dict) -> None:
    """Move each comm op appended since ``n_before`` to just after the op
    (index) in ``after``; ops sharing a slot keep their relative order."""
    appended = b.ops[n_before:]
    slots: dict[int, list] = {}
    for op in appended:
        slots.setdefault(after[id(op)], []).append(op)
    ops = list(slots.pop(-1, []))
    for i, op in enumerate(b.ops[:n_before]):
        ops.append(op)
        ops.extend(slots.get(i, ()))
    b.ops[:] = ops
