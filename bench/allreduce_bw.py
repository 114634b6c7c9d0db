"""Allreduce bus bandwidth through the runtime's comm stream vs bare mpi4py.

    mpiexec -n 2 python bench/allreduce_bw.py [--sizes 64K,1M,8M,32M] [--iters 20]

For each size, in the same run: (a) back-to-back bare ``comm.Allreduce``
calls on a numpy buffer, (b) a graph of as many AllReduce ops (chained,
compiled and launched by the executor, run on the comm stream with their
probes, one stream synchronisation per graph as in a training step).  Bus
bandwidth = 2 (n - 1) / n x bytes / time, as nccl-tests reports it; the
ratio (b)/(a) is the runtime's efficiency (target >= 0.9).  Rank 0 prints.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from msprof.runtime.comm import world
from msprof.runtime.compiler import compile_graph
from msprof.runtime.graph import GraphBuilder
from msprof.runtime.ops_comm import AllReduce
from msprof.runtime.tensor import Parameter


def parse_size(s: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(s[:-1]) * units[s[-1].upper()]) if s[-1].upper() in units else int(s)


def best_time(fn, iters: int) -> float:
    """Median seconds per call, after a warm-up; ranks start each call together."""
    w = world()
    for _ in range(3):
        fn()
    times = []
    for _ in range(iters):
        w.comm.Barrier()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64K,1M,8M,32M")
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args(argv)
    w = world()
    if w.size < 2:
        print("run with mpiexec -n N (N >= 2)", file=sys.stderr)
        return 2
    n = w.size
    factor = 2 * (n - 1) / n
    rows = []
    for size in map(parse_size, args.sizes.split(",")):
        x = np.ones(size // 4, np.float32)
        y = np.empty_like(x)
        reps = max(1, min(16, (128 << 20) // size))

        def bare_reps():
            for _ in range(reps):
                w.comm.Allreduce(x, y)
        bare = best_time(bare_reps, args.iters) / reps
        v = Parameter(x.copy(), name=f"buf{size}", requires_grad=False)
        with GraphBuilder("allreduce") as b:
            for _ in range(reps):
                v = b.add(AllReduce, (v,), mean=False)
            exe = compile_graph(b.finish([]))
        rt = best_time(lambda: exe.run([]), args.iters) / reps
        rows.append((size, factor * size / bare / 1e9, factor * size / rt / 1e9, bare / rt))
    if w.rank == 0:
        print(f"allreduce bus bandwidth, {n} ranks (GB/s)")
        print(f"{'bytes':>10}  {'mpi4py':>8}  {'runtime':>8}  {'ratio':>6}")
        for size, a, b, r in rows:
            print(f"{size:>10}  {a:8.2f}  {b:8.2f}  {r:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
