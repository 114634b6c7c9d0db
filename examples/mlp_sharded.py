"""A wide MLP on scikit-learn's digits with its Dense layers sharded over the ranks.

    python examples/mlp_sharded.py [--width 1024] [--steps 200]
    mpiexec -n 4 python examples/mlp_sharded.py        # each rank holds 1/4 of the weights
    msprof run -n 2 examples/mlp_sharded.py

Operator-level model parallel: the hidden layers alternate column splits
(each rank computes its share of the output features, an AllGather joins
them) and row splits (each rank contracts its share of the input features,
an AllReduce sums the partial products).  The losses equal the one-rank
run's.  Rank 0 prints.
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


def digits(seed: int):
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target.astype(np.int32), test_size=0.2,
                                              random_state=seed, stratify=d.target)
    mean, std = x_tr.mean(), x_tr.std()
    return (x_tr - mean) / std, y_tr, (x_te - mean) / std, y_te


def sharded_mlp(width: int, n: int) -> nn.SequentialCell:
    column, row = ((1, 1), (n, 1)), ((1, n), (1, n))
    return nn.SequentialCell([
        nn.Dense(64, width, activation="relu").shard(column),
        nn.Dense(width, width, activation="relu").shard(row),
        nn.Dense(width, width, activation="relu").shard(column),
        nn.Dense(width, 10),
    ])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rank, ranks = get_rank(), get_group_size()
    say = print if rank == 0 else (lambda *a, **k: None)
    set_seed(args.seed)
    set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    x_tr, y_tr, x_te, y_te = digits(args.seed)
    net = sharded_mlp(args.width, ranks)
    opt = nn.Momentum(net.trainable_params(), args.lr, 0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits()), opt)
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
    n_ops = len(step.executable(x_tr[:args.batch_size], y_tr[:args.batch_size]))
    say(f"{n} steps of {n_ops} ops on {ranks} rank(s): {t.mean() * 1e3:.2f} ms/step "
        f"(median {np.median(t) * 1e3:.2f}), {wall:.1f} s in all")
    acc = float((net(x_te).asnumpy().argmax(1) == y_te).mean())
    say(f"final test accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
