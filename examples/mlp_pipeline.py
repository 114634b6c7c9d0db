"""A pipeline-parallel MLP on scikit-learn's digits: one stage per rank.

    python examples/mlp_pipeline.py [--micro-batches 4] [--steps 200]
    mpiexec -n 4 python examples/mlp_pipeline.py       # 4 stages, GPipe
    msprof run -n 2 examples/mlp_pipeline.py --micro-batches 1   # all bubble

The four Dense blocks are assigned to stages with ``pipeline_stage`` (two
ranks: two blocks each).  Every step runs the micro-batches' forwards, then
their backwards, sending activations and gradients between neighbouring
ranks; the loss (broadcast from the last stage) equals the one-rank run's.
Rank 0 prints.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from msprof.runtime import NumpyDataset, nn, set_seed
from msprof.runtime.parallel import get_group_size, get_rank, set_auto_parallel_context
from msprof.runtime.parallel.pipeline import PipelineTrainOneStepCell


def mlp(width: int, blocks: int = 4) -> nn.SequentialCell:
    dims = [64] + [width] * (blocks - 1)
    cells = [nn.Dense(a, b, activation="relu") for a, b in zip(dims, dims[1:])]
    return nn.SequentialCell(cells + [nn.Dense(dims[-1], 10)])


def digits(seed: int):
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target.astype(np.int32), test_size=0.2,
                                              random_state=seed, stratify=d.target)
    mean, std = x_tr.mean(), x_tr.std()
    return (x_tr - mean) / std, y_tr, (x_te - mean) / std, y_te


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--micro-batches", type=int, default=4)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rank, ranks = get_rank(), get_group_size()
    say = print if rank == 0 else (lambda *a, **k: None)
    set_seed(args.seed)
    set_auto_parallel_context(pipeline_stages=ranks, micro_batches=args.micro_batches)
    x_tr, y_tr, x_te, y_te = digits(args.seed)
    net = mlp(args.width)
    for i, cell in enumerate(net._order):
        cell.pipeline_stage = i * ranks // len(net._order)
    step = PipelineTrainOneStepCell(net, nn.SoftmaxCrossEntropyWithLogits(),
                                    lambda params: nn.Momentum(params, args.lr, 0.9))
    data = NumpyDataset(x_tr, y_tr, args.batch_size, shuffle=True, seed=args.seed,
                        drop_remainder=True)
    times, n = [], 0
    t0 = time.perf_counter()
    while n < args.steps:
        for x, y in data:
            if n == args.steps:
                break
            t = time.perf_counter()
            loss = float(step(x, y).asnumpy())
            times.append(time.perf_counter() - t)
            n += 1
            if n % 50 == 0 or n == args.steps:
                say(f"step {n:4d}  loss {loss:.4f}", flush=True)
    wall = time.perf_counter() - t0
    t = np.array(times[1:] or times)
    say(f"{n} steps, {ranks} stages x {args.micro_batches} micro-batches: "
        f"{t.mean() * 1e3:.2f} ms/step (median {np.median(t) * 1e3:.2f}), {wall:.1f} s in all")
    if ranks == 1:      # the whole network is here: evaluate it
        acc = float((net(x_te).asnumpy().argmax(1) == y_te).mean())
        say(f"final test accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
