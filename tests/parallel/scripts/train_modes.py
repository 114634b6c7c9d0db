"""A few training steps in one parallel mode; rank 0 prints the losses as JSON.

    mpiexec -n N python train_modes.py MODE [--steps K] [--global-batch B] [--no-overlap]

MODE: alone (one rank, the reference), dp (LeNet, data parallel),
pipeline (an MLP, one stage per rank), shard (an MLP with sharded Dense).
Every mode sees the same global batches, so its losses must equal alone's.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from msprof.runtime import nn, set_seed
from msprof.runtime.dataset import ShardedBatches
from msprof.runtime.parallel import get_group_size, get_rank, set_auto_parallel_context

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository
from tests.runtime.nets import LeNet5  # noqa: E402

GLOBAL_BATCH = 16


def mlp():
    return nn.SequentialCell([nn.Dense(64, 128, activation="relu"),
                              nn.Dense(128, 128, activation="relu"),
                              nn.Dense(128, 64, activation="relu"), nn.Dense(64, 12)])


def batches(shape, steps, seed=0, size=GLOBAL_BATCH):
    r = np.random.default_rng(seed)
    return [(r.standard_normal((size,) + shape).astype(np.float32),
             r.integers(0, 10, size).astype(np.int32)) for _ in range(steps)]


def plain_step(net, lr=0.05):
    opt = nn.Momentum(net.trainable_params(), lr, 0.9)
    return nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits()), opt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["alone", "dp", "pipeline", "shard"])
    ap.add_argument("--model", choices=["lenet", "mlp"], default=None)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--global-batch", type=int, default=GLOBAL_BATCH)
    ap.add_argument("--no-overlap", action="store_true")
    ap.add_argument("--bucket-bytes", type=int, default=8 << 10)
    ap.add_argument("--fail-rank", type=int, default=-1, help="raise on this rank at step 2")
    args = ap.parse_args()
    model = args.model or ("lenet" if args.mode == "dp" else "mlp")
    rank, n = get_rank(), get_group_size()
    set_seed(0)
    net = LeNet5() if model == "lenet" else mlp()
    data = batches((1, 32, 32) if model == "lenet" else (64,), args.steps, size=args.global_batch)
    if args.mode == "dp":
        set_auto_parallel_context(parallel_mode="data_parallel", bucket_bytes=args.bucket_bytes,
                                  overlap=not args.no_overlap)
        data = ShardedBatches(data, n, rank)
        step = plain_step(net, 0.01 if model == "lenet" else 0.05)
    elif args.mode == "pipeline":
        from msprof.runtime.parallel.pipeline import PipelineTrainOneStepCell
        set_auto_parallel_context(pipeline_stages=n)
        step = PipelineTrainOneStepCell(net, nn.SoftmaxCrossEntropyWithLogits(),
                                        lambda p: nn.Momentum(p, 0.05, 0.9), micro_batches=4)
    elif args.mode == "shard":
        set_auto_parallel_context(parallel_mode="semi_auto_parallel")
        cells = net._order
        cells[0].shard(((1, 1), (n, 1)))          # column split: output features
        cells[1].shard(((1, n), (1, n)))          # row split: input features
        cells[2].shard(((1, 1), (n, 1)))
        cells[3].shard(((1, n), (1, n)))
        step = plain_step(net)
    else:
        step = plain_step(net, 0.01 if model == "lenet" else 0.05)
    losses = []
    for i, (x, y) in enumerate(data):
        if i == 2 and rank == args.fail_rank:
            raise RuntimeError(f"rank {rank} fails at step 2 (--fail-rank)")
        losses.append(float(step(x, y).asnumpy()))
    if rank == 0:
        print(json.dumps({"mode": args.mode, "ranks": n, "losses": losses}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
