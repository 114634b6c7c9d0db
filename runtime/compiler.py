"""Compile a captured graph for a device: storage, memory plan, kernels, ids.

1. Persistent storage: parameters move into the pool (once per device),
   constants and the input feeds get persistent blocks.
2. Lifetimes: a value is born when its producer is launched and dies after
   its last reader is launched; graph outputs live until the step ends;
   an op's workspaces, packed into one block, live for that op only.  The
   planner places them all.
3. Kernels: each op's primitive binds a closure to its buffers' views.
4. The op list is registered with the probes (``op_register``), once.

An op whose primitive sets ``may_alias`` (AllReduce) writes its output into
the storage of the input at the same position when that input is an
intermediate value that nothing else reads and that is not a graph output:
the two values are one buffer (one alloc, one free, the producer's), and
the kernel, bound to the same array for both, works in place (a collective
with ``MPI.IN_PLACE``: no copy, no second buffer).

Freeing a buffer right after its last reader is *launched* (not finished)
is safe because everything runs on one in-order stream: the next op to
reuse the memory cannot start before that reader ends.  Communication ops
run on a second stream, so every buffer they touch (inputs, outputs,
workspace) lives until the graph's last op instead: nothing of the compute
stream can land in it while a collective may still be using it.  Where an
op reads a value the other stream produces, the step carries ``wait``: the
executor makes its stream wait for everything launched on the other one.
"""
from __future__ import annotations

import numpy as np

from msprof.runtime import device_model, hooks, knobs
from msprof.runtime.device import Device, get_device
from msprof.runtime.executor import Executable, Step
from msprof.runtime.graph import Graph
from msprof.runtime.planner import align, plan


def _nbytes(shape, dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _param_array(param, device: Device) -> np.ndarray:
    """The parameter's storage on this device, moving it there on first use."""
    if param.block is None or param.block_device is not device:
        block = device.pool.alloc_persistent(param.shape, param.dtype)
        np.copyto(block.array, param.data)
        param.data, param.block, param.block_device = block.array, block, device
    return param.data


def _workspace_layout(op) -> tuple[list, int]:
    """An op's scratch buffers packed into one block (one alloc, one free):
    [(offset, shape, dtype)] and the block's size."""
    layout, size = [], 0
    for shape, dtype in op.prim.workspace(op):
        layout.append((size, shape, dtype))
        size += align(_nbytes(shape, dtype))
    return layout, size


def _aliases(graph: Graph) -> dict[int, object]:
    """id(output) -> the value whose buffer it shares (see the module
    docstring): the input at its position, or that input's own root."""
    readers: dict[int, int] = {}
    for op in graph.ops:
        for v in op.inputs:
            readers[id(v)] = readers.get(id(v), 0) + 1
    kept = {id(v) for v in graph.outputs}
    root: dict[int, object] = {}
    for op in graph.ops:
        if not op.prim.may_alias:
            continue
        for x, y in zip(op.inputs, op.outputs):
            if (x.kind == "op" and readers[id(x)] == 1 and id(x) not in kept
                    and x.shape == y.shape and x.dtype == y.dtype):
                root[id(y)] = root.get(id(x), x)
    return root


def _lifetimes(graph: Graph, alias: dict):
    """Per op: the keys of buffers born there and of buffers dying there
    (a buffer is keyed by its root value, so aliases are one buffer)."""
    def key(v):
        return ("v", id(alias.get(id(v), v)))
    last: dict[tuple, int] = {}
    for i, op in enumerate(graph.ops):
        for v in op.inputs:
            if v.kind == "op":
                last[key(v)] = i
    kept = {key(v) for v in graph.outputs}
    born, dies = [], [[] for _ in graph.ops]
    for i, op in enumerate(graph.ops):
        here = [(key(v), v.nbytes) for v in op.outputs if id(v) not in alias]
        _, ws_size = _workspace_layout(op)
        if ws_size:
            here.append((("w", op.id), ws_size))
            dies[i].append((("w", op.id), ws_size))
        born.append(here)
        for v in op.outputs:          # never read: dies where it is born
            if id(v) not in alias and key(v) not in last and key(v) not in kept:
                dies[i].append((key(v), v.nbytes))
    for i, op in enumerate(graph.ops):
        seen = set()
        for v in op.inputs:
            k = key(v)
            if v.kind == "op" and last[k] == i and k not in kept and k not in seen:
                seen.add(k)
                dies[i].append((k, v.nbytes))
    if any(op.prim.stream for op in graph.ops):
        _extend_comm_lifetimes(graph, dies, key)
    return born, dies


def _extend_comm_lifetimes(graph: Graph, dies, key) -> None:
    """Buffers a comm op touches die at the graph's last op (see above)."""
    touched = set()
    for op in graph.ops:
        if op.prim.stream:
            touched.update(key(v) for v in op.inputs + op.outputs if v.kind == "op")
            touched.add(("w", op.id))
    late = []
    for gone in dies:
        late += [k for k in gone if k[0] in touched]
        gone[:] = [k for k in gone if k[0] not in touched]
    dies[-1].extend(late)


def _stream_waits(graph: Graph) -> list[bool]:
    """Per op: must its stream first wait for the other stream?  Only where
    it reads a value produced there since the last such wait."""
    producer_at = {}
    for i, op in enumerate(graph.ops):
        for v in op.outputs:
            producer_at[id(v)] = i
    waited = {0: -1, 1: -1}          # per stream: the other's ops waited for, up to index
    waits = []
    for i, op in enumerate(graph.ops):
        s = op.prim.stream
        need = [producer_at[id(v)] for v in op.inputs
                if v.kind == "op" and graph.ops[producer_at[id(v)]].prim.stream != s]
        wait = any(j > waited[s] for j in need)
        if wait:
            waited[s] = i - 1
        waits.append(wait)
    return waits


# MSRT_SLOW_FACTOR's extra time still owed by this process's slowed kernels
# (the compute stream's thread is the only one that runs them), and the most
# overshoot that later kernels pay back: milliseconds mean the machine was
# busy, and paying those back would take the slowdown out of whole steps.
_owed = [0.0]
_PAYBACK_S = 0.0005


def _slowed(kernel, factor: float):
    """MSRT_SLOW_FACTOR: the kernel lasts factor x its work.

    The kernel's work is the processor time its thread spent in it, not
    its wall time: a kernel preempted by another process (a peer rank
    polling, the collector draining) would otherwise be slowed by the
    preemption times the factor, and the injected slowdown would depend on
    how busy the machine is; time it was preempted is instead part of the
    time the slowdown adds.  (One BLAS thread, the device's default, so the
    thread's time is the kernel's.)

    The extra time is spent yielding the processor in a loop (``sleep(0)``,
    which releases the GIL), not in one sleep: a sleep overshoots by tens
    of microseconds (timer slack) -- a small kernel's whole length -- and by
    milliseconds on a busy machine (the wake-up waits for a core), and the
    kernel after it starts with cold caches; a yielding thread stays
    runnable, so it is as slow as a device doing more work, and a busy
    machine stretches it no more than the kernel itself.  What a kernel
    overshoots (up to ``_PAYBACK_S``) the next ones pay back."""
    import time
    now, work, sleep = time.perf_counter, time.thread_time, time.sleep
    owed = _owed

    def slow_kernel():
        t, c = now(), work()
        kernel()
        t1 = now()
        until = t + owed[0] + (work() - c) * factor
        t2 = t1
        while t2 < until:
            sleep(0)
            t2 = now()
        owed[0] = max(until - t2, -_PAYBACK_S)
    return slow_kernel


def compile_graph(graph: Graph, device: Device | None = None) -> Executable:
    device = device or get_device()
    pool = device.pool
    arrays: dict[int, np.ndarray] = {}
    for v, param in graph.params:
        arrays[id(v)] = _param_array(param, device)
    for v, data in graph.consts:
        block = pool.alloc_persistent(v.shape, v.dtype)
        np.copyto(block.array, data)
        arrays[id(v)] = block.array
    feeds = [pool.alloc_persistent(v.shape, v.dtype) for v in graph.inputs]
    for v, block in zip(graph.inputs, feeds):
        arrays[id(v)] = block.array

    alias = _aliases(graph)
    born, dies = _lifetimes(graph, alias)
    # A comm op's outputs and workspace are placed as if born before the
    # graph's first op: memory freed after a compute op's launch may still be
    # in use by that op when the comm stream gets to write.
    events = [("alloc", k, n) for op, here in zip(graph.ops, born) if op.prim.stream
              for k, n in here]
    for op, here, gone in zip(graph.ops, born, dies):
        if not op.prim.stream:
            events += [("alloc", k, n) for k, n in here]
        events += [("free", k, n) for k, n in gone]
    offsets, arena_size = plan(events)
    arena = pool.reserve(arena_size)

    owner: dict[tuple, int] = {}
    workspaces: dict[int, list[np.ndarray]] = {}
    for op in graph.ops:
        for v in op.outputs:
            if id(v) in alias:        # its root's buffer (produced earlier)
                arrays[id(v)] = arrays[id(alias[id(v)])]
                continue
            arrays[id(v)] = arena.view(offsets[("v", id(v))], v.shape, v.dtype)
            owner[("v", id(v))] = op.id
        layout, _ = _workspace_layout(op)
        base = offsets.get(("w", op.id), 0)
        owner[("w", op.id)] = op.id
        workspaces[op.id] = [arena.view(base + off, shape, dtype) for off, shape, dtype in layout]

    steps, streams = [], []
    slow = knobs.SLOW_FACTOR if knobs.SLOW_RANK == device.rank and knobs.SLOW_FACTOR > 1 else 0
    for op, here, gone in zip(graph.ops, born, dies):
        kernel = op.prim.bind(op, [arrays[id(v)] for v in op.inputs],
                              [arrays[id(v)] for v in op.outputs], workspaces[op.id])
        if knobs.DEVICE_FLOPS and not op.prim.stream:
            kernel = device_model.modelled(kernel, op.flops / knobs.DEVICE_FLOPS, slow or 1.0)
        elif slow and not op.prim.stream:
            kernel = _slowed(kernel, slow)
        allocs = tuple((arena.base + offsets[k], n) for k, n in here)
        frees = tuple((arena.base + offsets[k], n, owner[k]) for k, n in gone)
        steps.append(Step(op.id, kernel, allocs, frees))
        streams.append(op.prim.stream)
    # Multi-stream graphs: (stream, wait) per op beside the steps; a
    # compute-only graph keeps the executor's single-stream loop.
    lanes = tuple(zip(streams, _stream_waits(graph))) if any(streams) else None

    outputs = []
    for v in graph.outputs:
        key = ("v", id(alias.get(id(v), v)))
        addr = arena.base + offsets[key] if key in offsets else -1
        outputs.append((arrays[id(v)], addr, v.nbytes if addr >= 0 else 0, owner.get(key, -1)))

    for op in graph.ops:
        hooks.op_register(op.id, graph.id, op.name, op.type, op.path, op.flops, op.bytes)
    return Executable(graph, device, steps, [b.array for b in feeds], outputs, arena, lanes)
