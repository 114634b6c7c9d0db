"""The memory planner and the pool: real pool-backed buffers, no overlap
between live blocks, frees right after the last reader, exact accounting."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from msprof.runtime.device import get_device
from msprof.runtime.planner import ALIGN, FreeList, align
from .nets import lenet_batch, lenet_train_cell


# -- the planner's allocator --------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 5000)), max_size=60))
def test_free_list_never_overlaps(script):
    fl, live = FreeList(), {}
    for i, (free_one, size) in enumerate(script):
        if free_one and live:
            key = sorted(live)[size % len(live)]
            off, n = live.pop(key)
            fl.free(off, n)
        else:
            off = fl.alloc(size)
            assert off % ALIGN == 0
            for o, n in live.values():
                assert off + align(size) <= o or o + align(n) <= off
            live[i] = (off, size)
        assert fl.peak >= sum(align(n) for _, n in live.values())
    for off, n in live.values():
        fl.free(off, n)
    assert fl.top == 0 and fl.starts == []       # everything coalesced back


def test_free_list_reuses_best_fit():
    fl = FreeList()
    a, b, c = fl.alloc(256), fl.alloc(64), fl.alloc(128)
    fl.alloc(64)
    fl.free(a, 256)
    fl.free(c, 128)
    assert fl.alloc(100) == c                  # the 128 hole, not the 256 one
    assert fl.peak == 256 + 64 + 128 + 64


# -- a training step's memory events ------------------------------------------------

def run_steps(probes, n=2, batch=8):
    net, train = lenet_train_cell()
    x, y = lenet_batch(batch)
    exe = train.executable(x, y)
    start = len(probes)
    for _ in range(n):
        train(x, y)
    return net, exe, probes[start:]


def test_buffers_are_views_of_pool_arenas(probes):
    net, exe, _ = run_steps(probes, n=1)
    pool = get_device().pool
    arenas = [a.buffer for a in pool.arenas]

    def backed(a):
        return any(np.shares_memory(a, buf) for buf in arenas)

    assert all(backed(p.data) for p in net.trainable_params())
    assert all(backed(f) for f in exe.feeds)
    assert all(backed(view) for view, *_ in exe.outputs)
    assert exe.arena in pool.arenas


def test_live_blocks_never_overlap_and_in_use_is_exact(probes):
    _, exe, calls = run_steps(probes)
    pool = get_device().pool
    in_use = pool.in_use                      # persistent blocks only, after the steps
    live: dict[int, int] = {}
    for name, args, _ in calls:
        if name == "mem_alloc":
            addr, size, op_id, reported = args
            for a, n in live.items():
                assert addr + size <= a or a + n <= addr, "overlapping live blocks"
            live[addr] = size
            in_use += size
            assert reported == in_use
        elif name == "mem_free":
            addr, size, op_id, reported = args
            assert live.pop(addr) == size
            in_use -= size
            assert reported == in_use
        elif name == "step_end":
            assert live == {}, "a step leaked blocks"
    assert in_use == pool.in_use


def test_each_buffer_freed_after_its_last_reader_is_launched(probes):
    _, exe, calls = run_steps(probes, n=1)
    ops = exe.graph.ops
    last_reader, producer = {}, {}
    for op in ops:
        for v in op.outputs:
            producer[id(v)] = op.id
        for v in op.inputs:
            if v.kind == "op":
                last_reader[id(v)] = op.id
    arena_base = exe.arena.base
    events = [(n, a) for n, a, _ in calls if n in ("kernel_launch", "mem_alloc", "mem_free")]
    launched = None
    frees_after = {}                # op id launched just before a free -> owners freed
    for name, args in events:
        if name == "kernel_launch":
            launched = args[0]
        elif name == "mem_free" and args[0] >= arena_base:
            frees_after.setdefault(launched, []).append(args[2])
    outputs = {id(v) for v in exe.graph.outputs}
    for op in ops:
        for v in op.outputs:
            if id(v) in outputs:
                continue
            reader = last_reader.get(id(v), op.id)     # never read: freed at birth
            assert op.id in frees_after.get(reader, []), f"{op.path} not freed after op {reader}"


def test_each_op_allocates_its_outputs_before_launch(probes):
    _, exe, calls = run_steps(probes, n=1)
    pending = []
    for name, args, _ in calls:
        if name == "mem_alloc":
            pending.append(args[2])
        elif name == "kernel_launch":
            assert all(owner == args[0] for owner in pending)
            pending = []
    by_op = {op.id: op for op in exe.graph.ops}
    allocs = [a for n, a, _ in calls if n == "mem_alloc" and a[2] in by_op]
    conv = exe.graph.ops[0]
    sizes = [size for _, size, op_id, _ in allocs if op_id == conv.id]
    assert sizes[0] == conv.outputs[0].nbytes         # the output, then one workspace
    assert len(sizes) == 2
    assert sizes[1] >= sum(np.prod(s) * np.dtype(d).itemsize for s, d in conv.prim.workspace(conv))


def test_addresses_repeat_every_step(probes):
    _, exe, calls = run_steps(probes, n=3)
    steps, cur = [], None
    for name, args, _ in calls:
        if name == "step_begin":
            cur = []
        elif name in ("mem_alloc", "mem_free") and cur is not None:
            cur.append((name, args[0], args[1], args[2]))
        elif name == "step_end":
            steps.append(cur)
    assert len(steps) == 3 and steps[0] == steps[1] == steps[2]


def test_persistent_blocks_allocated_once(probes):
    net, exe, calls = run_steps(probes, n=3)
    # Parameters, optimizer state and feeds came before the first step, op id -1.
    first = next(i for i, c in enumerate(probes) if c[0] == "step_begin")
    persistent = [a for n, a, _ in probes[:first] if n == "mem_alloc"]
    assert all(op_id == -1 for _, _, op_id, _ in persistent)
    expected = 2 * sum(p.data.nbytes for p in net.trainable_params()) + \
        sum(f.nbytes for f in exe.feeds) + 4    # + the learning rate
    assert sum(size for _, size, _, _ in persistent) == expected
    assert not [a for n, a, _ in calls if n == "mem_alloc" and a[2] == -1]


def test_plan_is_smaller_than_no_reuse():
    _, train = lenet_train_cell()
    x, y = lenet_batch(32)
    exe = train.executable(x, y)
    total = sum(size for step in exe.steps for _, size in step.allocs)
    assert exe.arena.nbytes < 0.6 * total
