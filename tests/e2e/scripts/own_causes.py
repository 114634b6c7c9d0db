"""A training loop written as a user would write it, whose bottleneck (if
any) comes from its own code, not from the runtime's MSRT_* knobs.

    msprof run -n N python own_causes.py [--loader-sleep-ms MS] [--prep N] ...

An MLP (dense layers of ``--width``) trained with Momentum, data parallel
when run on several ranks.  The causes:

``--loader-sleep-ms MS``  a slow data loader: every batch takes MS to come
                          (``time.sleep`` between steps), on ``--loader-rank``
                          only (-1: every rank)
``--prep N``              numpy preprocessing of every batch between steps
                          (N rounds of sorting 100k random numbers, one thread)
``--grow-shape``          the batch shape changes every step (one more
                          sample each time): a new graph is compiled for
                          each step, and its input buffers stay cached
``--rebuild``             the training cell and its optimizer are built anew
                          for every step (and kept in a list)
``--more-work-rank R``    rank R gets ``--more-work`` times the batch of the
                          others (data it is given, not a slower machine)
``--chain L``             a host-bound net: ``--batch`` 1, ``--width``
                          small, and L cheap ops after the first layer
                          (``--chain-op``: ReLUs, or reshaping copies)

Rank 0 prints one JSON line with what the run was (steps, ranks) and the
median wall time its loader (the sleep and the preprocessing) took per
batch on rank 0, as the script timed it (``loader_ns``; the first batch
left out, as the analysis judges the typical step).
"""
import argparse
import json
import sys
import time

import numpy as np

from msprof.runtime import functional as F
from msprof.runtime import nn, set_seed
from msprof.runtime.nn.cell import Cell
from msprof.runtime.parallel import get_group_size, get_rank, set_auto_parallel_context


class Chain(Cell):
    """``length`` cheap ops on a small tensor, one after the other: ReLUs,
    or copies into a new shape and back (flattening a sample and
    restoring it); all launch, no work."""

    def __init__(self, length: int, op: str = "relu"):
        super().__init__()
        self.length, self.op = length, op
        self.act = nn.ReLU()

    def construct(self, x):
        shape = x.shape
        for i in range(self.length):
            if self.op == "relu":
                x = self.act(x)
            else:
                x = F.reshape(x, (-1,) if i % 2 == 0 else shape)
        return F.reshape(x, shape)


def net_for(args, features: int):
    w = args.width
    layers = [nn.Dense(features, w, activation="relu")]
    if args.chain:
        layers.append(Chain(args.chain, args.chain_op))
    layers += [nn.Dense(w, w, activation="relu"), nn.Dense(w, 10)]
    return nn.SequentialCell(layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64, help="per rank")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--loader-sleep-ms", type=float, default=0.0)
    ap.add_argument("--loader-rank", type=int, default=-1)
    ap.add_argument("--prep", type=int, default=0)
    ap.add_argument("--grow-shape", action="store_true")
    ap.add_argument("--more-work-rank", type=int, default=-1)
    ap.add_argument("--more-work", type=float, default=2.0)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--chain", type=int, default=0)
    ap.add_argument("--chain-op", choices=["relu", "reshape"], default="relu")
    args = ap.parse_args()
    rank, n = get_rank(), get_group_size()
    set_seed(0)
    features = args.width
    net = net_for(args, features)
    if n > 1:
        set_auto_parallel_context(parallel_mode="data_parallel", bucket_bytes=1 << 40)
    opt = nn.Momentum(net.trainable_params(), 0.01, 0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits()), opt)
    rng = np.random.default_rng(rank)
    batch = args.batch
    if rank == args.more_work_rank:
        batch = int(round(batch * args.more_work))
    history, loader_ns = [], []
    for i in range(args.steps):
        if args.rebuild and i:
            opt = nn.Momentum(net.trainable_params(), 0.01, 0.9)
            step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits()),
                                       opt)
            history.append(step)
        b = batch + (i if args.grow_shape else 0)
        x = rng.standard_normal((b, features)).astype(np.float32)
        y = rng.integers(0, 10, b).astype(np.int32)
        t0 = time.perf_counter_ns()
        if args.loader_sleep_ms and args.loader_rank in (-1, rank):
            time.sleep(args.loader_sleep_ms / 1e3)        # waiting for the next batch
        for _ in range(args.prep):                        # preprocessing it
            x += np.sort(rng.standard_normal(100_000))[:1].astype(np.float32)
        loader_ns.append(time.perf_counter_ns() - t0)
        step(x, y)
    if rank == 0:
        print(json.dumps({"ranks": n, "steps": args.steps,
                          "loader_ns": float(np.median(loader_ns[1:]))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
