"""A process announces its device and operators again to a tracer that
comes after them (``msprof attach``).  No tracer is needed to check when:
the semaphores are plain globals of the native module, raised here by
hand as the kernel raises them for an attached probe (the probe sites
stay one-byte nops, so nothing traps)."""
import ctypes

import pytest

from msprof.profiler.library import runtime_probe_library
from msprof.runtime import _usdt, hooks

SEMAPHORES = ("device_init", "op_register", "step_begin", "step_end", "record_batch")


@pytest.fixture
def probes():
    lib = ctypes.CDLL(runtime_probe_library())
    sems = {n: ctypes.c_ushort.in_dll(lib, f"msrt_{n}_semaphore") for n in SEMAPHORES}
    calls = []
    _usdt.set_announcer(lambda: calls.append(1))

    def trace(on: bool):
        for s in sems.values():
            s.value = int(on)

    yield trace, calls
    trace(False)
    _usdt.set_announcer(hooks._announce_again)


def test_a_tracer_arriving_late_gets_one_announcement_per_arrival(probes):
    trace, calls = probes
    _usdt.op_register(1, 1, "MatMul-op1", "MatMul", "net/dense", 10, 20)   # nobody traces
    _usdt.step_begin(0)
    _usdt.step_end(0)
    assert calls == []                    # no tracer: nothing to announce to
    trace(True)                           # a tracer attaches
    _usdt.step_begin(1)
    assert calls == [1]                   # announced again before the step
    _usdt.step_end(1)
    _usdt.step_begin(2)
    _usdt.flush_staged()
    assert calls == [1]                   # once per arrival
    trace(False)                          # it detaches ...
    _usdt.step_begin(3)
    trace(True)                           # ... and a tracer attaches again
    _usdt.flush_staged()                  # a hand-over of staged records announces too
    assert calls == [1, 1]


def test_a_tracer_present_from_the_start_gets_no_repeat(probes):
    trace, calls = probes
    trace(True)
    _usdt.step_begin(0)                   # whatever came before was announced again once
    calls.clear()
    _usdt.device_init(0, 1, 0)
    _usdt.op_register(1, 1, "MatMul-op1", "MatMul", "net/dense", 10, 20)
    for step in range(1, 4):
        _usdt.step_begin(step)
        _usdt.step_end(step)
    assert calls == []                    # every announcement was seen as it was made


def test_the_hooks_keep_what_they_announced(monkeypatch):
    monkeypatch.setattr(hooks, "_announced", [])
    hooks.device_init(1, 2, 0)
    hooks.op_register(7, 1, "Add-op7", "Add", "net", 0, 8)
    assert hooks._announced == [(_usdt.device_init, (1, 2, 0)),
                                (_usdt.op_register, (7, 1, "Add-op7", "Add", "net", 0, 8))]
