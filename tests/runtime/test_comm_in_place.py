"""Collectives without copies or round trips: an AllReduce whose input
nothing else reads reduces that buffer in place, and synchronizing an idle
stream costs nothing (one rank here; tests/parallel runs them on N)."""
import _thread

import numpy as np
import pytest

from msprof.runtime import functional as F
from msprof.runtime.compiler import compile_graph
from msprof.runtime.device import get_device
from msprof.runtime.graph import GraphBuilder
from msprof.runtime.ops_comm import AllReduce
from msprof.runtime.stream import Stream, StreamError
from msprof.runtime.tensor import Parameter

X = np.arange(-6, 6, dtype=np.float32).reshape(3, 4)


def _compile(build):
    with GraphBuilder("g") as b:
        v = b.input(X.shape)
        outs = build(b, v)
        return compile_graph(b.finish(outs))


def _own_allocs(probes, exe):
    """Op id -> bytes the op allocated for itself in the graph's arena."""
    got = {}
    for addr, size, op_id, _ in probes.named("mem_alloc"):
        if addr >= exe.arena.base:
            got[op_id] = got.get(op_id, 0) + size
    return got


def _reduce(b, v, mean=False):
    return b.add(AllReduce, (v,), mean=mean)


def test_an_allreduce_whose_input_has_no_other_reader_takes_its_buffer(probes):
    exe = _compile(lambda b, v: F.relu(_reduce(b, _reduce(b, F.relu(v)), mean=True)))
    (y,) = exe.run([X])
    np.testing.assert_array_equal(y, np.maximum(X, 0))
    relu1, ar1, ar2, relu2 = exe.graph.ops
    allocs = _own_allocs(probes, exe)
    # one buffer for relu1 -> ar1 -> ar2 (both reductions in place), one for relu2
    assert ar1.id not in allocs and ar2.id not in allocs
    assert allocs[relu1.id] == allocs[relu2.id] == X.nbytes
    frees = [(size, op_id) for addr, size, op_id, _ in probes.named("mem_free")
             if addr >= exe.arena.base]
    assert sorted(frees) == sorted([(X.nbytes, relu1.id), (X.nbytes, relu2.id)])
    assert exe.arena.nbytes == 2 * 64                    # two 48-byte buffers, aligned


@pytest.mark.parametrize("case", ["read again", "graph output", "feed", "param"])
def test_an_allreduce_keeps_its_own_buffer_where_the_input_lives_on(probes, case):
    p = Parameter(X.copy(), name="p", requires_grad=False)

    def build(b, v):
        h = F.relu(v)
        if case == "read again":
            return F.add(_reduce(b, h), h)
        if case == "graph output":
            return [_reduce(b, h), h]
        if case == "feed":
            return _reduce(b, v)
        return _reduce(b, p)
    exe = _compile(build)
    outs = exe.run([X])
    ar = next(op for op in exe.graph.ops if op.type == "AllReduce")
    assert _own_allocs(probes, exe)[ar.id] == X.nbytes
    relu = np.maximum(X, 0)
    want = {"read again": [2 * relu], "graph output": [relu, relu], "feed": [X], "param": [X]}
    for got, w in zip(outs, want[case]):
        np.testing.assert_array_equal(got, w)
    np.testing.assert_array_equal(p.data, X)             # the parameter is never written


def test_an_idle_stream_synchronizes_without_a_round_trip():
    s = Stream(7, "test")
    try:
        blocked = _thread.allocate_lock()
        blocked.acquire()
        s.put((-1, 0, 0, blocked.acquire))               # the worker now waits on us
        s.synchronize()                                  # nothing launched: returns at once
        ran = []
        s.seq += 1
        s.put((1, s.seq, 0, lambda: ran.append(1)))
        blocked.release()
        s.synchronize()                                  # a launched kernel: waits for it
        assert ran == [1] and s.done == s.seq
    finally:
        s.close()


def test_a_failed_kernel_is_reported_even_when_nothing_is_launched_after_it():
    s = Stream(7, "test")
    try:
        s.seq += 1
        s.put((1, s.seq, 0, lambda: 1 / 0))
        with pytest.raises(StreamError, match="ZeroDivisionError"):
            s.synchronize()
        s.synchronize()                                  # reported once
    finally:
        s.close()


def test_a_graph_of_collectives_leaves_the_compute_stream_alone(monkeypatch):
    exe = _compile(lambda b, v: _reduce(b, _reduce(b, v)))
    dev = get_device()
    np.testing.assert_array_equal(exe.run([X])[0], X)
    puts, put = [], dev.compute.put
    monkeypatch.setattr(dev.compute, "put", lambda item: (puts.append(item), put(item)))
    np.testing.assert_array_equal(exe.run([X])[0], X)
    assert puts == []                    # no kernel, and no synchronize marker either


def test_cross_stream_waits_on_the_inline_device(inline):
    # compute -> comm -> compute: each op waits for the other stream, which
    # (inline) has always run everything already
    exe = _compile(lambda b, v: F.relu(_reduce(b, F.relu(F.add(v, v)))))
    for _ in range(2):
        np.testing.assert_array_equal(exe.run([X])[0], np.maximum(2 * X, 0))
