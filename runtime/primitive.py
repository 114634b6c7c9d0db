"""The base of every op type: shape inference, cost, kernel and gradient.

A primitive is a class with static methods, never instantiated: an Op points
at its primitive, and the compiler asks it for a kernel bound to the op's
pool buffers.  Binding happens once per compiled graph, so ``bind`` may do
slow things (views, reshapes, window views) and return a closure that only
does the arithmetic.
"""
from __future__ import annotations

REGISTRY: dict[str, type["Primitive"]] = {}


class Primitive:
    type = ""
    inplace: tuple[int, ...] = ()    # inputs the kernel writes (optimizer updates)
    takes_seed = False               # grad() accepts ONE as an output gradient
    stream = 0                       # the device stream running the kernel (1: comm)
    may_alias = False                # output i may take input i's buffer (see compiler)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.type:
            REGISTRY[cls.type] = cls

    @staticmethod
    def infer(op) -> list[tuple[tuple, object]]:
        """[(shape, dtype)] of the op's outputs."""
        raise NotImplementedError

    @staticmethod
    def flops(op) -> int:
        return 0

    @staticmethod
    def workspace(op) -> list[tuple[tuple, object]]:
        """Scratch buffers the kernel needs while it runs, [(shape, dtype)]."""
        return []

    @staticmethod
    def bind(op, ins, outs, ws):
        """A zero-argument callable computing outs from ins (numpy arrays)."""
        raise NotImplementedError

    @staticmethod
    def grad(op, douts, needs):
        """Gradient ops for the inputs flagged in ``needs`` (None elsewhere).

        ``douts`` holds one Value (or None: no gradient flows) per output;
        the ops are added to the current builder.  No rule: not differentiable.
        """
        raise NotImplementedError(f"{op.type} has no gradient")


class _One:
    """The gradient seed of a scalar loss, d loss / d loss: never materialised
    for rules that take it (a fused loss hands out its backprop as is)."""

    def __repr__(self):
        return "ONE"


ONE = _One()


def nelem(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
