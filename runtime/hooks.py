"""The runtime's hook points: every probe the runtime fires goes through here.

By default each hook is the USDT probe site of the native module
(``msprof.runtime._usdt``): nearly free while nobody traces it.  When the
process is started by ``msprof run --backend inprocess`` (the environment
variable ``MSPROF_INPROCESS_DIR`` is set), the same hooks are replaced by an
in-process recorder that writes the same records the BPF programs would.

Call sites use ``hooks.kernel_end(...)`` (a module attribute looked up at
call time), so swapping the implementation here reaches every caller.
"""
from __future__ import annotations

import os

from msprof.runtime import _usdt

# What the process announced (device, operators), in order, to announce it
# again to a tracer that attaches while it runs (``msprof attach``): the
# native module calls _announce_again when such a tracer arrives.  Kept for
# the process's life: one tuple per compiled operator.
_announced: list = []


def device_init(rank, world_size, device_kind):
    _announced.append((_usdt.device_init, (rank, world_size, device_kind)))
    _usdt.device_init(rank, world_size, device_kind)


def op_register(op_id, graph_id, name, type, scope, flops, nbytes):
    args = (op_id, graph_id, name, type, scope, flops, nbytes)
    _announced.append((_usdt.op_register, args))
    _usdt.op_register(*args)


def _announce_again():
    for fire, args in list(_announced):
        fire(*args)


_usdt.set_announcer(_announce_again)
step_begin = _usdt.step_begin          # (step)
step_end = _usdt.step_end              # (step, samples)
kernel_launch = _usdt.kernel_launch    # (op_id, stream, seq)
kernel_begin = _usdt.kernel_begin      # (op_id, stream, seq)
kernel_end = _usdt.kernel_end          # (op_id, stream, seq, launch_ns, begin_ns)
mem_alloc = _usdt.mem_alloc            # (addr, size, op_id, in_use)
mem_free = _usdt.mem_free              # (addr, size, op_id, in_use)
mem_batch = _usdt.mem_batch            # (in_use, frees, addr, size, op_id, ...): 1 to 3 events
comm_begin = _usdt.comm_begin          # (kind, bytes, group, peer, seq)
comm_end = _usdt.comm_end              # (kind, bytes, group, peer, seq)
now_ns = _usdt.now_ns                  # CLOCK_MONOTONIC ns, the probes' clock
flush_staged = _usdt.flush_staged      # () hand this thread's staged records over

HOOK_NAMES = (
    "device_init", "op_register", "step_begin", "step_end", "kernel_launch",
    "kernel_begin", "kernel_end", "mem_alloc", "mem_free", "mem_batch", "comm_begin",
    "comm_end", "flush_staged",
)
MEM_BATCH_MAX = 3                      # events one mem_batch hit carries


def mem_batch_events(in_use, frees, *triples):
    """The pool events one ``mem_batch`` call stands for, in order:
    ``("mem_alloc" | "mem_free", (addr, size, op_id, in_use after it))``."""
    out = []
    for i in range(len(triples) // 3):
        addr, size, op_id = triples[3 * i:3 * i + 3]
        free = frees >> i & 1
        in_use += -size if free else size
        out.append(("mem_free" if free else "mem_alloc", (addr, size, op_id, in_use)))
    return out


def mem_batches(events, chunk: int = MEM_BATCH_MAX):
    """Packs pool events ``(is_free, addr, size, op_id)`` into ``mem_batch``
    calls: a tuple of ``(change of bytes in use, arguments after in_use)``
    per call."""
    out = []
    for at in range(0, len(events), chunk):
        part = events[at:at + chunk]
        frees = sum(1 << i for i, e in enumerate(part) if e[0])
        delta = sum(-e[2] if e[0] else e[2] for e in part)
        out.append((delta, (frees,) + tuple(x for e in part for x in e[1:])))
    return tuple(out)

# Device kinds (device_init's third argument).
DEVICE_CPU = 0


def _install_inprocess_recorder() -> None:
    target = os.environ.get("MSPROF_INPROCESS_DIR")
    if not target:
        return
    from msprof.runtime.recorder import Recorder

    recorder = Recorder(target)
    g = globals()
    for name in HOOK_NAMES:
        g[name] = getattr(recorder, name)


_install_inprocess_recorder()
