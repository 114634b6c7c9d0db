"""The record layouts that travel from a probe to the profile directory.

One place defines them: the BPF programs include the C structs generated
here (``c_header()``), the collector decodes ring-buffer bytes with the numpy
dtypes, and the in-process backend writes the very same records, so both
backends feed one decoder.  This module is plain data: no bcc, no runtime.
"""
from __future__ import annotations

import numpy as np

# Event type codes (``type`` field of an EVENT record).
KERNEL = 1        # one executed kernel, paired in the kernel: launch, begin, end
MEM_ALLOC = 2
MEM_FREE = 3
STEP = 4          # one training step, paired: begin and end
COMM = 5          # one collective, paired: begin and end
KERNEL_LAUNCH = 6  # unpaired launch (only when kernel_launch is attached alone)
CPU_WAIT = 7      # a runtime thread waited for a CPU (sched_wakeup/sched_switch)
EXIT = 8          # a traced process exited
BLOCKED = 9       # a runtime thread slept (a lock, the GIL, I/O) until woken
CPU_OP = 10       # a framework's operator scope on a CPU thread (frameworks/torch)

# Meta record kinds (``type`` field of a META record).
DEVICE_INIT = 1
OP_REGISTER = 2
PROCESS_FORK = 3

# Collective kinds (``kind`` argument of comm_begin/comm_end).
COMM_KINDS = {
    0: "allreduce",
    1: "allgather",
    2: "reduce_scatter",
    3: "broadcast",
    4: "send",
    5: "recv",
    6: "barrier",
    7: "alltoall",
    8: "reduce",
    9: "gather",
    10: "scatter",
}

# Hot-path record: 56 bytes of payload (64 with the ring buffer's header).
#   ts    CLOCK_MONOTONIC ns when the record was emitted (the end of a pair)
#   pid   process (tgid)      tid  thread
#   type  an event type code  sub  stream (kernels), collective kind (comms)
#   seq   sequence number / step number
#   a0-a3 per type:
#     KERNEL         op_id, launch_ns, begin_ns, step      (sub stream, seq seq)
#     KERNEL_LAUNCH  op_id, -, -, step                     (sub stream, seq seq)
#     MEM_ALLOC/FREE addr, size, op_id, in_use
#     STEP           begin_ns, -, -, step
#     COMM           begin_ns, bytes, group << 32 | peer (u32), step
#                    (sub kind, seq seq)
#     CPU_WAIT       runnable since (ns), the CPU it then ran on, the process
#                    that ran there until then (0: idle), -
#                    (ts: when it got a CPU; tid: the waiting thread;
#                    sub 1: that CPU was idle until then)
#     BLOCKED        asleep since (ns), -, -, -  (ts: when it was woken; tid: the
#                    thread; then it waits for a CPU: a CPU_WAIT record)
#     EXIT           exit_group() status (-1: none), last signal received (0: none)
#     CPU_OP         op_id, self ns (its time less its children's), begin_ns, step
#                    (sub: the thread's lane, 0 the first to run an op; seq: depth,
#                    0 for a scope no other scope of its thread encloses)
#   step is -1 outside a step.
EVENT_FIELDS = [
    ("ts", "u8"), ("pid", "u4"), ("tid", "u4"),
    ("type", "u2"), ("sub", "u2"), ("seq", "u4"),
    ("a0", "i8"), ("a1", "i8"), ("a2", "i8"), ("a3", "i8"),
]
EVENT = np.dtype(EVENT_FIELDS)
assert EVENT.itemsize == 56

NAME_LEN, TYPE_LEN, SCOPE_LEN = 64, 32, 176

# Rare record, strings included: 320 bytes of payload.
#   DEVICE_INIT   a0 rank, a1 world size, a2 device kind
#   OP_REGISTER   a0 op_id, a1 graph_id, a2 flops, a3 bytes, and the strings
#   PROCESS_FORK  a0 child pid
META_FIELDS = [
    ("ts", "u8"), ("pid", "u4"), ("type", "u4"),
    ("a0", "i8"), ("a1", "i8"), ("a2", "i8"), ("a3", "i8"),
    ("name", f"S{NAME_LEN}"), ("optype", f"S{TYPE_LEN}"), ("scope", f"S{SCOPE_LEN}"),
]
META = np.dtype(META_FIELDS)
assert META.itemsize == 320

# Summary mode (``msprof run --mode summary``): kernels and pool events are
# folded into aggregates in the kernel instead of travelling one by one.
# A kernel's duration d (ns) counts in bucket bit_length(d) of a log2
# histogram, 2**(b-1) <= d < 2**b (b = 0: d == 0); the last bucket also
# holds every longer kernel (2**46 ns is almost a day).
HIST_BUCKETS = 48

#   per (pid, stream, op_id): kernels, their total, shortest and longest
#   duration and the histogram
KERNEL_STATS_FIELDS = [
    ("pid", "u4"), ("stream", "u4"), ("op_id", "i8"),
    ("calls", "u8"), ("total_ns", "u8"), ("min_ns", "u8"), ("max_ns", "u8"),
    ("hist", ("u8", HIST_BUCKETS)),
]
KERNEL_STATS = np.dtype(KERNEL_STATS_FIELDS)

#   per (pid, op_id): blocks allocated and freed (a free carries the op that
#   allocated the block) and the pool's bytes in use after its largest
#   allocation
MEMORY_STATS_FIELDS = [
    ("pid", "u4"), ("pad", "u4"), ("op_id", "i8"),
    ("allocs", "u8"), ("alloc_bytes", "u8"), ("frees", "u8"), ("freed_bytes", "u8"),
    ("peak_in_use", "u8"),
]
MEMORY_STATS = np.dtype(MEMORY_STATS_FIELDS)

_C_TYPES = {"u8": "u64", "u4": "u32", "u2": "u16", "i8": "s64"}


def _c_struct(name: str, fields: list[tuple[str, str]]) -> str:
    lines = [f"struct {name} {{"]
    for field, code in fields:
        if code.startswith("S"):
            lines.append(f"    char {field}[{code[1:]}];")
        else:
            lines.append(f"    {_C_TYPES[code]} {field};")
    lines.append("};")
    return "\n".join(lines)


def c_header() -> str:
    """The C declarations the BPF programs share with the decoder."""
    defs = {
        "EV_KERNEL": KERNEL, "EV_MEM_ALLOC": MEM_ALLOC, "EV_MEM_FREE": MEM_FREE,
        "EV_STEP": STEP, "EV_COMM": COMM, "EV_KERNEL_LAUNCH": KERNEL_LAUNCH,
        "EV_CPU_WAIT": CPU_WAIT, "EV_EXIT": EXIT,
        "EV_BLOCKED": BLOCKED, "EV_CPU_OP": CPU_OP,
        "META_DEVICE_INIT": DEVICE_INIT, "META_OP_REGISTER": OP_REGISTER,
        "META_PROCESS_FORK": PROCESS_FORK,
        "NAME_LEN": NAME_LEN, "TYPE_LEN": TYPE_LEN, "SCOPE_LEN": SCOPE_LEN,
        "HIST_BUCKETS": HIST_BUCKETS,
    }
    out = [f"#define {k} {v}" for k, v in defs.items()]
    out.append(_c_struct("msprof_event", EVENT_FIELDS))
    out.append(_c_struct("msprof_meta", META_FIELDS))
    return "\n".join(out) + "\n"
