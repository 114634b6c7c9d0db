"""The tables of a profile directory (docs/FORMAT.md, format version 1), as
the reader sees them: which files must exist, which columns each must carry,
and the dtype every column is read as."""
from __future__ import annotations

FORMAT_VERSION = 1

# Buckets of a kernel_summary histogram: a duration d (ns) counts in bucket
# bit_length(d), 2**(b-1) <= d < 2**b (b = 0: d == 0); the last one also
# holds every longer kernel.
HIST_BUCKETS = 48

# Every table FORMAT.md lists, with its columns and dtypes.  A reader needs the
# columns of DESIGN.md's minimum contract (REQUIRED); the others are filled
# with a neutral value when an older or foreign writer left them out.
COLUMNS: dict[str, dict[str, str]] = {
    "kernels": {
        "rank": "int32", "pid": "int32", "tid": "int32", "op_id": "int64",
        "stream": "int16", "seq": "int64", "step": "int64",
        "launch_ns": "int64", "start_ns": "int64", "dur_ns": "int64",
    },
    "ops": {
        "rank": "int32", "op_id": "int64", "graph_id": "int64", "name": "object",
        "type": "object", "scope": "object", "flops": "int64", "bytes": "int64",
    },
    "memory": {
        "rank": "int32", "pid": "int32", "ts_ns": "int64", "addr": "int64",
        "size": "int64", "op_id": "int64", "in_use": "int64",
    },
    "comms": {
        "rank": "int32", "pid": "int32", "tid": "int32", "kind": "object",
        "bytes": "int64", "group": "int64", "peer": "int64", "seq": "int64",
        "step": "int64", "start_ns": "int64", "dur_ns": "int64",
    },
    "steps": {
        "rank": "int32", "pid": "int32", "step": "int64", "start_ns": "int64",
        "dur_ns": "int64", "samples": "int64",
    },
    "devices": {
        "rank": "int32", "pid": "int32", "world_size": "int32", "kind": "int32",
        "init_ns": "int64",
    },
    "cpu_waits": {
        "rank": "int32", "pid": "int32", "tid": "int32", "start_ns": "int64",
        "dur_ns": "int64", "cpu": "int32", "idle_cpu": "bool", "holder_pid": "int32",
    },
    "blocked": {
        "rank": "int32", "pid": "int32", "tid": "int32", "start_ns": "int64",
        "dur_ns": "int64",
    },
    "cpu_time": {
        "rank": "int32", "pid": "int32", "tid": "int32", "cpu": "int32", "ns": "int64",
    },
    # Summary mode: per-operator aggregates instead of kernel and memory rows.
    "kernel_summary": {
        "rank": "int32", "pid": "int32", "op_id": "int64", "stream": "int16",
        "calls": "int64", "total_ns": "int64", "min_ns": "int64", "max_ns": "int64",
        "hist": "object",
    },
    "memory_summary": {
        "rank": "int32", "pid": "int32", "op_id": "int64", "allocs": "int64",
        "alloc_bytes": "int64", "frees": "int64", "freed_bytes": "int64",
        "peak_in_use": "int64",
    },
}

# Columns holding a list of integers per row (Arrow list<int64>); pandas
# keeps them as dtype object, one int64 numpy array of this length per row.
LIST_COLUMNS: dict[str, int] = {"hist": HIST_BUCKETS}

# Tables a profile may lack (written since a later msprof, or only by the
# eBPF backend's writers): a missing one reads as empty.
OPTIONAL = ("cpu_waits", "blocked", "cpu_time", "kernel_summary", "memory_summary")

REQUIRED: dict[str, tuple[str, ...]] = {
    "kernels": ("rank", "op_id", "stream", "step", "start_ns", "dur_ns"),
    "ops": ("op_id", "name", "type", "scope", "flops", "bytes"),
    "memory": ("rank", "ts_ns", "addr", "size", "op_id", "in_use"),
    "comms": ("rank", "kind", "bytes", "seq", "peer", "start_ns", "dur_ns"),
    "steps": ("rank", "step", "start_ns", "dur_ns"),
    "devices": ("rank",),
    "cpu_waits": ("rank", "tid", "start_ns", "dur_ns"),
    "blocked": ("rank", "tid", "start_ns", "dur_ns"),
    "cpu_time": ("rank", "tid", "cpu", "ns"),
    "kernel_summary": ("rank", "op_id", "calls", "total_ns"),
    "memory_summary": ("rank", "op_id", "allocs", "alloc_bytes"),
}

# Value given to a column a writer left out.  launch_ns -1 means "unknown".
DEFAULTS: dict[str, object] = {
    "rank": -1, "pid": -1, "tid": -1, "seq": -1, "step": -1, "launch_ns": -1,
    "graph_id": -1, "group": -1, "world_size": -1, "kind": -1, "init_ns": -1,
    "name": "", "type": "", "scope": "", "cpu": -1,
    "idle_cpu": False, "holder_pid": -1, "samples": 0,
}

META_REQUIRED = ("format_version",)

# The largest count, time or byte value a profile may hold, and the largest
# sum of a column an analysis may form: 2**61 ns is 73 years, 2**61 bytes 2
# EiB, far past any real run.  Below it, a time plus a duration and a
# column's total stay inside int64; above it they would wrap (an int64-max
# duration once turned a total into -30 ns), so a table or meta.json holding
# such a value is refused on load instead.
MAX_VALUE = 2**61

# Allowed range of the integer columns whose values mean something beyond
# their dtype (the others, ids such as pid, op_id, addr, seq, only need to
# fit their dtype).  -1: "none" or "unknown" (docs/FORMAT.md).
RANGES: dict[str, tuple[int, int]] = {
    "rank": (-1, 2**31 - 1), "world_size": (-1, 2**31 - 1),
    "step": (-1, MAX_VALUE), "launch_ns": (-1, MAX_VALUE), "init_ns": (-1, MAX_VALUE),
    **{c: (0, MAX_VALUE) for c in (
        "start_ns", "ts_ns", "dur_ns", "ns", "total_ns", "min_ns", "max_ns", "calls",
        "allocs", "frees", "alloc_bytes", "freed_bytes", "peak_in_use", "in_use",
        "flops", "bytes", "hist")},
    "size": (-MAX_VALUE, MAX_VALUE),
}

# Columns the analyses add up (over rows, or times a count): their absolute
# values must sum to at most MAX_VALUE.
SUMMED = ("dur_ns", "ns", "total_ns", "calls", "size", "allocs", "frees", "alloc_bytes",
          "freed_bytes", "flops", "bytes", "hist")
