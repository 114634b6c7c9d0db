"""Tensor and Parameter: concrete data that users hand to and get from a graph.

Storage is a numpy array (float32, or int32 for labels and indices).  A
Parameter is the persistent state of a graph; when a graph using it is
compiled, its storage moves into the device's memory pool and ``data`` from
then on is a view of a pool block, shared by every graph of that device.
"""
from __future__ import annotations

import numpy as np


def as_array(x) -> np.ndarray:
    """numpy array of a supported dtype: floats become float32, ints int32."""
    a = x.asnumpy() if isinstance(x, Tensor) else np.asarray(x)
    if a.dtype.kind == "f" and a.dtype != np.float32:
        a = a.astype(np.float32)
    elif a.dtype.kind in "iub" and a.dtype != np.int32:
        a = a.astype(np.int32)
    return a


class Tensor:
    def __init__(self, data, dtype=None):
        self.data = as_array(data) if dtype is None else np.asarray(data, dtype=dtype)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def asnumpy(self) -> np.ndarray:
        return self.data

    def __float__(self):
        return float(self.data)

    def __repr__(self):
        return f"Tensor(shape={self.shape}, dtype={self.dtype})\n{self.data}"


class Parameter(Tensor):
    """A named, persistent tensor; trainable unless requires_grad=False."""

    def __init__(self, data, name: str = "", requires_grad: bool = True):
        super().__init__(data)
        self.name, self.requires_grad = name, requires_grad
        self.block = None        # the pool block once on a device
        self.block_device = None

    def set_data(self, data) -> None:
        """Overwrite the values in place (pool storage stays where it is)."""
        np.copyto(self.data, as_array(data), casting="unsafe")

    def __repr__(self):
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"
