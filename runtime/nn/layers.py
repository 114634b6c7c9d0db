"""Layers: Dense, Conv2d, MaxPool2d, AvgPool2d, ReLU, Flatten, SequentialCell.

Weights follow MindSpore's layouts (Dense (out, in), Conv2d (out, in, kh,
kw)) and its defaults (Conv2d without bias, ``valid`` padding).
"""
from __future__ import annotations

from msprof.runtime import functional as F
from msprof.runtime.init import initializer
from msprof.runtime.nn.cell import Cell
from msprof.runtime.tensor import Parameter


class Dense(Cell):
    def __init__(self, in_channels, out_channels, has_bias=True, activation=None,
                 weight_init="he_uniform"):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = Parameter(initializer(weight_init, (out_channels, in_channels)))
        self.bias = (Parameter(initializer("bias_uniform", (out_channels,), fan_in=in_channels))
                     if has_bias else None)
        self.activation = ReLU() if activation == "relu" else activation

    def shard(self, strategy):
        """Split this layer's MatMul over the ranks (operator-level model
        parallel); see parallel/shard.py for the strategies.  Returns self."""
        from msprof.runtime.parallel.shard import shard_dense
        shard_dense(self, strategy)
        return self

    def construct(self, x):
        if getattr(self, "shard_kind", "replicated") != "replicated" or \
                getattr(self, "shard_error", None) is not None:
            from msprof.runtime.parallel.shard import sharded_dense
            return sharded_dense(self, x)
        y = F.matmul(x, self.weight, transpose_b=True)
        if self.bias is not None:
            y = F.bias_add(y, self.bias)
        return self.activation(y) if self.activation is not None else y

    def __repr__(self):
        return f"Dense({self.in_channels}, {self.out_channels})"


class Conv2d(Cell):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="valid",
                 padding=0, has_bias=False, weight_init="he_uniform"):
        super().__init__()
        k = kernel_size
        if pad_mode == "same":
            if stride != 1 or k % 2 == 0:
                raise ValueError("pad_mode='same' needs stride 1 and an odd kernel")
            padding = k // 2
        elif pad_mode == "valid":
            padding = 0
        elif pad_mode != "pad":
            raise ValueError(f"pad_mode must be 'valid', 'same' or 'pad', got {pad_mode!r}")
        self.stride, self.padding = stride, padding
        shape = (out_channels, in_channels, k, k)
        self.weight = Parameter(initializer(weight_init, shape))
        self.bias = (Parameter(initializer("bias_uniform", (out_channels,), fan_in=in_channels * k * k))
                     if has_bias else None)

    def construct(self, x):
        y = F.conv2d(x, self.weight, stride=self.stride, pad=self.padding)
        return F.bias_add(y, self.bias) if self.bias is not None else y

    def __repr__(self):
        o, c, k, _ = self.weight.shape
        return f"Conv2d({c}, {o}, kernel_size={k}, stride={self.stride}, padding={self.padding})"


class MaxPool2d(Cell):
    def __init__(self, kernel_size=1, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride or kernel_size

    def construct(self, x):
        return F.max_pool(x, self.kernel_size, self.stride)


class AvgPool2d(Cell):
    def __init__(self, kernel_size=1, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride or kernel_size

    def construct(self, x):
        return F.avg_pool(x, self.kernel_size, self.stride)


class ReLU(Cell):
    def construct(self, x):
        return F.relu(x)


class Flatten(Cell):
    def construct(self, x):
        return F.flatten(x)


class SequentialCell(Cell):
    """Sub-cells run in order; their scope segments are "0", "1", ..."""

    def __init__(self, *cells):
        super().__init__()
        self._order = []
        for i, cell in enumerate(cells[0] if len(cells) == 1 and isinstance(cells[0], list)
                                 else cells):
            setattr(self, str(i), cell)
            self._order.append(cell)

    def construct(self, x):
        for cell in self._order:
            x = cell(x)
        return x
