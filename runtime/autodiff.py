"""Reverse-mode autodiff on the graph being captured.

``gradients(y, wrt)`` walks the ops captured so far backwards from y and
appends each op's gradient ops (its primitive's ``grad`` rule) to the same
builder, under the scope ``Gradients/<scope of the forward op>``.  Only ops
on a path from ``wrt`` to y get a rule applied, and a rule is told which
inputs need a gradient, so nothing is computed that no one reads (the
first convolution never computes d loss / d image).
"""
from __future__ import annotations

from msprof.runtime.graph import Value, builder
from msprof.runtime.ops_math import AddN, Fill
from msprof.runtime.primitive import ONE


def _materialise(dy, like: Value):
    if dy is ONE:
        return builder().add(Fill, (), shape=like.shape, value=1.0)
    return dy


def gradients(y, wrt, sens=None) -> list:
    """d y / d each of ``wrt`` (Values or Parameters) as Values, None where y
    does not depend on it.  ``sens`` weights y's gradient (default: ones, as
    for a scalar loss); with a sens input one can take the vector-Jacobian
    product of any output, which is how the gradient checks work."""
    b = builder()
    y = b.value(y)
    targets = [b.value(w) for w in wrt]
    target_ids = {id(v) for v in targets}

    # Forward pass over the ops: which values depend on a target?
    needs: set[int] = set(target_ids)
    for op in b.ops:
        if any(id(v) in needs for v in op.inputs):
            needs.update(id(v) for v in op.outputs)

    pending: dict[int, list] = {id(y): [ONE if sens is None else b.value(sens)]}

    def total(v: Value):
        """The summed gradient of v (AddN when several ops consumed it)."""
        grads = pending.get(id(v))
        if not grads:
            return None
        if len(grads) > 1:
            grads[:] = [b.add(AddN, [_materialise(g, v) for g in grads])]
        return grads[0]

    for op in reversed(list(b.ops)):
        if not any(id(v) in needs for v in op.inputs):
            continue
        if not any(pending.get(id(v)) for v in op.outputs):
            continue
        mask = [id(v) in needs for v in op.inputs]
        with b.scope_as(f"Gradients/{op.scope}" if op.scope else "Gradients"):
            douts = [total(v) for v in op.outputs]
            if not op.prim.takes_seed:
                douts = [_materialise(d, v) if d is not None else None
                         for d, v in zip(douts, op.outputs)]
            dins = op.prim.grad(op, douts, mask)
        for v, d, m in zip(op.inputs, dins, mask):
            if m and d is not None:
                pending.setdefault(id(v), []).append(d)

    with b.scope_as("Gradients"):
        out = [total(v) for v in targets]
        return [_materialise(g, v) if g is not None else None for g, v in zip(out, targets)]
