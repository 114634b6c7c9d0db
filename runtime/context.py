"""Global settings, MindSpore style: ``set_context(device_target="CPU")``.

Each setting has a default that an environment variable overrides
(``MSPROF_<NAME>``, read when first asked for), and ``set_context``
overrides both.  Settings that shape the device take effect when the device
is created (the first compile); change them before that, or call
``device.reset_device()``.
"""
from __future__ import annotations

import os

GRAPH_MODE = 0

# name: (default, parser)
_SETTINGS = {
    "mode": (GRAPH_MODE, int),
    # "CPU": numpy kernels on threaded streams.  "Inline": the same kernels
    # run at launch on the host thread.  "Null": nothing computed, every
    # probe still fired (the do-nothing device: fast tests, launch overhead).
    "device_target": ("CPU", str),
    "rank": (0, int),
    "world_size": (1, int),
    "seed": (0, int),
    # Threads per BLAS call.  The device's parallelism is its streams and its
    # ranks (several per machine): BLAS threads spinning beside them only
    # steal their cores, which made LeNet steps 5x slower on a busy machine.
    "blas_threads": (1, int),
}
_values: dict[str, object] = {}

DEVICE_TARGETS = ("CPU", "Inline", "Null")


def get_context(name: str):
    if name not in _SETTINGS:
        raise KeyError(f"unknown context setting {name!r}; known: {', '.join(_SETTINGS)}")
    if name not in _values:
        default, parse = _SETTINGS[name]
        env = os.environ.get(f"MSPROF_{name.upper()}")
        _values[name] = parse(env) if env is not None else default
    return _values[name]


def set_context(**settings) -> None:
    for name, value in settings.items():
        if name not in _SETTINGS:
            raise KeyError(f"unknown context setting {name!r}; known: {', '.join(_SETTINGS)}")
        if name == "device_target" and value not in DEVICE_TARGETS:
            raise ValueError(f"device_target must be one of {DEVICE_TARGETS}, got {value!r}")
        if name == "mode" and value != GRAPH_MODE:
            raise ValueError("only GRAPH_MODE is supported")
        _values[name] = _SETTINGS[name][1](value)
