"""A process announces its device and operators again to a tracer that
comes after them (``msprof attach``) when it asks.  No tracer is needed to
check when: the request word and the semaphores are plain globals of the
native module, written here by hand (the semaphores as the kernel raises
them for an attached probe; the probe sites stay one-byte nops)."""
import ctypes
import os

import pytest

from msprof.profiler.library import runtime_probe_library
from msprof.profiler.targets import request_announcements
from msprof.runtime import _usdt, hooks

SEMAPHORES = ("device_init", "op_register", "step_begin", "step_end", "record_batch")


@pytest.fixture
def probes():
    lib = ctypes.CDLL(runtime_probe_library())
    sems = [ctypes.c_ushort.in_dll(lib, f"msrt_{n}_semaphore") for n in SEMAPHORES]
    request = ctypes.c_uint.in_dll(lib, "msrt_announce_request")
    calls = []
    _usdt.set_announcer(lambda: calls.append(1))

    def trace(on: bool):
        for s in sems:
            s.value = int(on)

    yield trace, request, calls
    trace(False)
    _usdt.set_announcer(hooks._announce_again)


def test_a_late_tracer_gets_one_announcement_per_request(probes):
    trace, request, calls = probes
    trace(True)                           # a tracer attached ...
    for step in range(3):
        _usdt.step_begin(step)
        _usdt.step_end(step, 0)
    assert calls == []                    # ... and did not ask: nothing again
    request.value += 1                    # it asks, once its probes are in place
    _usdt.step_begin(3)
    assert calls == [1]                   # announced again before the step
    _usdt.step_end(3, 0)
    _usdt.step_begin(4)
    _usdt.flush_staged()
    assert calls == [1]                   # once per request
    request.value += 1                    # another tracer asks
    _usdt.flush_staged()                  # a hand-over of staged records announces too
    assert calls == [1, 1]


def test_the_request_written_from_outside(probes):
    """What msprof attach writes into a process (here: into this one)."""
    trace, _, calls = probes
    request_announcements(os.getpid(), runtime_probe_library())
    _usdt.step_begin(0)
    assert calls == [1]


def test_the_hooks_keep_what_they_announced(monkeypatch):
    monkeypatch.setattr(hooks, "_announced", [])
    hooks.device_init(1, 2, 0)
    hooks.op_register(7, 1, "Add-op7", "Add", "net", 0, 8)
    assert hooks._announced == [(_usdt.device_init, (1, 2, 0)),
                                (_usdt.op_register, (7, 1, "Add-op7", "Add", "net", 0, 8))]
