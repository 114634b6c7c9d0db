"""Fixtures for the runtime tests: a fresh device per test, and a probe
recorder that replaces the hooks (module attributes) for the test's length."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from msprof.runtime import context, device, hooks


@pytest.fixture(autouse=True)
def fresh_device():
    """Each test creates its own device (CPU, threaded streams) and seed."""
    saved = dict(context._values)
    device.reset_device()
    from msprof.runtime import set_seed
    set_seed(0)
    yield
    device.reset_device()
    context._values.clear()
    context._values.update(saved)


@pytest.fixture
def inline():
    """Kernels run on the host thread at launch: fast, for numeric checks."""
    context.set_context(device_target="Inline")


class Calls(list):
    """(hook name, args, thread id) in call order."""

    def named(self, name):
        return [args for n, args, _ in self if n == name]


@pytest.fixture
def probes(monkeypatch):
    calls = Calls()
    lock = threading.Lock()

    def recorder(name):
        def hook(*args):
            with lock:
                calls.append((name, args, threading.get_ident()))
        return hook

    def mem_batch(*args):
        # recorded as the pool events it stands for
        with lock:
            calls.extend((n, a, threading.get_ident()) for n, a in hooks.mem_batch_events(*args))

    for name in hooks.HOOK_NAMES:
        monkeypatch.setattr(hooks, name, mem_batch if name == "mem_batch" else recorder(name))
    return calls


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
