"""A short, compute-heavy training run for the injected-cause tests.

    msprof run -n N python injected.py MODE [--steps K] [--micro M] ...

MODE ``dp``: an MLP (dense layers of ``--width``) trained data parallel,
every gradient in one bucket (so a step has exactly two allreduces: the
loss and the gradients), overlap off.  MODE ``pipeline``: ``--stages``
equal stages of ``--layers-per-stage`` dense layers, one per rank, GPipe
over ``--micro`` micro-batches; ``--in-features f`` puts a thin input
layer (f -> width) in front on stage 0, so that the stage, which computes
no input gradient, still does the others' work.  The kernels are long next to their launch
(milliseconds against microseconds), so a clean run is compute-bound.

Rank 0 prints one JSON line with what the run was (steps, ranks, the
communication ops of a training step and the op the runtime charges the
MSRT_LEAK_BYTES block to) so the tests know it without the profile.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from msprof.runtime import nn, set_seed
from msprof.runtime.device import get_device
from msprof.runtime.dataset import ShardedBatches
from msprof.runtime.parallel import get_group_size, get_rank, set_auto_parallel_context

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository
from tests.runtime.nets import LeNet5  # noqa: E402


def batches(features, batch, steps, seed=0):
    r = np.random.default_rng(seed)
    shape = features if isinstance(features, tuple) else (features,)
    return [(r.standard_normal((batch,) + shape).astype(np.float32),
             r.integers(0, 10, batch).astype(np.int32)) for _ in range(steps)]


def schedstat(field: int) -> dict[str, int]:
    """The kernel's own count of each thread's time on a CPU (field 0) or on
    a run queue (field 1: run_delay) so far, by thread id (schedstat); a
    thread that ends meanwhile is left out."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            out[tid] = int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[field])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["dp", "pipeline"])
    ap.add_argument("--model", choices=["mlp", "lenet"], default="mlp", help="dp")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128, help="global batch")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--stages", type=int, default=0, help="pipeline: 0 = one per rank")
    ap.add_argument("--layers-per-stage", type=int, default=2)
    ap.add_argument("--micro", type=int, default=4)
    ap.add_argument("--in-features", type=int, default=0,
                    help="dp: 0 = --width; pipeline: a thin input layer on stage 0")
    ap.add_argument("--bucket-bytes", type=int, default=1 << 40, help="dp")
    ap.add_argument("--overlap", action="store_true", help="dp: allreduce during backward")
    ap.add_argument("--sched-stats", action="store_true",
                    help="dp: rank 0 also reports its threads' run-queue waits (schedstat) "
                         "at the end and after the first step, and their time on a CPU")
    args = ap.parse_args()
    rank, n = get_rank(), get_group_size()
    set_seed(0)
    w = args.width
    info = {"mode": args.mode, "ranks": n, "steps": args.steps}
    if args.mode == "dp":
        fin = args.in_features or w
        if args.model == "lenet":
            net, fin = LeNet5(), (1, 32, 32)
        else:
            net = nn.SequentialCell([nn.Dense(fin, w, activation="relu"),
                                     nn.Dense(w, w, activation="relu"), nn.Dense(w, 10)])
        set_auto_parallel_context(parallel_mode="data_parallel", bucket_bytes=args.bucket_bytes,
                                  overlap=args.overlap)
        opt = nn.Momentum(net.trainable_params(), 0.01, 0.9)
        step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits()), opt)
        data = ShardedBatches(batches(fin, args.batch, args.steps), n, rank)
        for i, (x, y) in enumerate(data):
            step(x, y)
            if i == 0 and args.sched_stats:     # the first step: warm-up, and some
                info["run_delay_step0_ns"] = schedstat(1)   # threads not yet seen
                info["step0_end_ns"] = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        exe = step.executable(x, y)
        info["comm_ops"] = [op.name for op in exe.graph.ops if op.prim.stream]
        info["leak_op"] = {"op_id": exe.steps[-1].op_id, "name": exe.ops[-1].name}
    else:
        from msprof.runtime.parallel.pipeline import PipelineTrainOneStepCell
        stages = args.stages or n
        cells = []
        fin = args.in_features or w
        if args.in_features:             # a thin input layer: stage 0 then skips
            cell = nn.Dense(fin, w)      # only its cheap input gradient
            cell.pipeline_stage = 0
            cells.append(cell)
        for s in range(stages):
            for _ in range(args.layers_per_stage):
                cell = nn.Dense(w, w, activation="relu")
                cell.pipeline_stage = s
                cells.append(cell)
        net = nn.SequentialCell(cells)
        set_auto_parallel_context(pipeline_stages=stages)
        step = PipelineTrainOneStepCell(net, nn.SoftmaxCrossEntropyWithLogits(),
                                        lambda p: nn.Momentum(p, 0.01, 0.9),
                                        micro_batches=args.micro)
        for x, y in batches(fin, args.batch, args.steps):
            step(x, y)
        info.update(stages=stages, micro=args.micro)
    if args.sched_stats:
        info["run_delay_ns"] = schedstat(1)
        info["run_time_ns"] = schedstat(0)
        hog = getattr(get_device(), "_hog", None)         # MSRT_CPU_HOG's busy process
        info["hog_pid"] = hog.pid if hog is not None else None
    if rank == 0:
        print(json.dumps(info), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
