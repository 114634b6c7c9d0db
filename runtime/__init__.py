"""msprof.runtime: the small MindSpore-style training framework msprof instruments.

    from msprof.runtime import nn, Model, set_context, set_seed
    net = LeNet5()                                  # an nn.Cell
    opt = nn.Momentum(net.trainable_params(), 0.01, 0.9)
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(), opt)
    model.train(epochs, dataset)

Names are loaded lazily: ``from msprof.runtime import hooks`` (what probe
scripts and the profiler need) does not import the framework.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Tensor": "tensor", "Parameter": "tensor",
    "set_context": "context", "get_context": "context", "GRAPH_MODE": "context",
    "set_seed": "init", "Model": "model", "NumpyDataset": "dataset",
    "get_device": "device", "reset_device": "device", "compile_graph": "compiler",
    "GraphBuilder": "graph", "gradients": "autodiff",
}
_MODULES = {"nn", "functional", "hooks"}

__all__ = sorted(_EXPORTS) + sorted(_MODULES)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"msprof.runtime.{_EXPORTS[name]}"), name)
    if name in _MODULES:
        return importlib.import_module(f"msprof.runtime.{name}")
    raise AttributeError(f"module 'msprof.runtime' has no attribute {name!r}")
