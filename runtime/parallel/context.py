"""The auto-parallel context, in the spirit of MindSpore's:

    set_auto_parallel_context(parallel_mode="data_parallel", device_num=4,
                              bucket_bytes=1 << 20, overlap=True)

Modes: ``stand_alone`` (each rank trains alone), ``data_parallel`` (every
rank holds the whole model; gradients are averaged by bucketed allreduce),
``semi_auto_parallel`` (ops split by their ``shard`` strategies), and
``pipeline_stages=S`` with any mode selects pipeline parallelism (stages
from each Cell's ``pipeline_stage``).  ``device_num`` defaults to the number
of ranks and must equal it when given.
"""
from __future__ import annotations

from msprof.runtime.comm import get_group_size


class ParallelMode:
    STAND_ALONE = "stand_alone"
    DATA_PARALLEL = "data_parallel"
    SEMI_AUTO_PARALLEL = "semi_auto_parallel"
    MODES = (STAND_ALONE, DATA_PARALLEL, SEMI_AUTO_PARALLEL)


_DEFAULTS = {
    "parallel_mode": ParallelMode.STAND_ALONE,
    "device_num": 0,                 # 0: the number of ranks
    "pipeline_stages": 1,
    "micro_batches": 0,              # 0: one per stage (the pipeline's minimum)
    "pipeline_schedule": "gpipe",
    "bucket_bytes": 1 << 20,         # gradient bucket size (data parallel)
    "overlap": True,                 # allreduce buckets during backward
    "gradients_mean": True,
}
_values = dict(_DEFAULTS)


def set_auto_parallel_context(**settings) -> None:
    for name, value in settings.items():
        if name not in _DEFAULTS:
            raise KeyError(f"unknown auto-parallel setting {name!r}; known: {', '.join(_DEFAULTS)}")
        if name == "parallel_mode" and value not in ParallelMode.MODES:
            raise ValueError(f"parallel_mode must be one of {ParallelMode.MODES}, got {value!r}")
        if name == "device_num" and value not in (0, get_group_size()):
            raise ValueError(f"device_num={value} but the job has {get_group_size()} ranks "
                             f"(start it with mpiexec -n {value} or msprof run -n {value})")
        if name == "pipeline_schedule" and value != "gpipe":
            raise ValueError(f"pipeline_schedule must be 'gpipe', got {value!r}")
        if name in ("bucket_bytes", "pipeline_stages", "micro_batches") and int(value) < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        _values[name] = value


def get_auto_parallel_context(name: str):
    if name not in _DEFAULTS:
        raise KeyError(f"unknown auto-parallel setting {name!r}")
    if name == "device_num":
        return _values["device_num"] or get_group_size()
    return _values[name]


def reset_auto_parallel_context() -> None:
    _values.clear()
    _values.update(_DEFAULTS)


def step_samples(batch: int) -> int:
    """This rank's count of the samples a training step on ``batch`` rows
    trained on, so that the counts of all ranks add up to the job's
    samples per step (the ``samples`` of the step_end probe): stand-alone
    and data parallel, each rank its own rows; operator-level model
    parallel, where every rank computes on the same batch, rank 0 alone."""
    from msprof.runtime.comm import get_rank

    if _values["parallel_mode"] == ParallelMode.SEMI_AUTO_PARALLEL:
        return batch if get_rank() == 0 else 0
    return batch
