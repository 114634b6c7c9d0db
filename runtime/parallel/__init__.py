"""Parallel training: one place to choose the mode, and the passes behind it.

    from msprof.runtime.parallel import set_auto_parallel_context
    set_auto_parallel_context(parallel_mode="data_parallel", bucket_bytes=1 << 20)

| module | what |
|---|---|
| `context.py` | `set_auto_parallel_context(...)`: mode, device_num, stages, buckets |
| `data_parallel.py` | gradient buckets, allreduced on the comm stream during backward |
| `shard.py` | `Dense.shard(...)`: operator-level model parallel, its comm ops |
| `pipeline.py` | stages per Cell, micro-batches, GPipe with send/recv |
"""
from msprof.runtime.comm import get_group_size, get_rank
from msprof.runtime.parallel.context import (ParallelMode, get_auto_parallel_context,
                                             reset_auto_parallel_context,
                                             set_auto_parallel_context)

__all__ = ["ParallelMode", "set_auto_parallel_context", "get_auto_parallel_context",
           "reset_auto_parallel_context", "get_rank", "get_group_size"]
