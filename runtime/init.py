"""Parameter initialisers and the seed they draw from.

``set_seed(s)`` before building a network makes its initial weights, and
so a whole seeded run, reproducible.  Names follow MindSpore's initialisers.
"""
from __future__ import annotations

import math

import numpy as np

from msprof.runtime.context import get_context

_rng: np.random.Generator | None = None


def set_seed(seed: int) -> None:
    global _rng
    _rng = np.random.default_rng(seed)


def rng() -> np.random.Generator:
    if _rng is None:
        set_seed(get_context("seed"))
    return _rng


def _fans(shape):
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    fan_in = shape[1] * receptive if len(shape) > 1 else shape[0]
    return fan_in, shape[0] * receptive


def initializer(name: str, shape, fan_in: int | None = None) -> np.ndarray:
    """A float32 array of ``shape`` drawn by the named rule; a bias passes the
    fan-in of its layer."""
    shape = tuple(shape)
    fan_in, fan_out = (fan_in, shape[0]) if fan_in else _fans(shape)
    if name == "zeros":
        a = np.zeros(shape)
    elif name == "ones":
        a = np.ones(shape)
    elif name == "normal":
        a = rng().normal(0.0, 0.01, shape)
    elif name == "he_uniform":            # ReLU networks
        bound = math.sqrt(6.0 / fan_in)
        a = rng().uniform(-bound, bound, shape)
    elif name == "xavier_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        a = rng().uniform(-bound, bound, shape)
    elif name == "bias_uniform":          # PyTorch/MindSpore default bias range
        bound = 1.0 / math.sqrt(fan_in)
        a = rng().uniform(-bound, bound, shape)
    else:
        raise ValueError(f"unknown initializer {name!r}")
    return a.astype(np.float32)
