"""Allreduce bus bandwidth through the runtime's comm stream vs bare mpi4py.

    mpiexec -n 2 python bench/allreduce_bw.py [--sizes 64K,1M,8M,32M] [--iters 40]

For each size, in the same run and on the same memory:

* runtime: a graph of ``reps`` chained AllReduce ops (sum) on a parameter,
  compiled and launched by the executor, run on the comm stream with their
  probes; one ``exe.run`` = the launches and one device synchronisation, as
  in a training step;
* bare: the same graph written by hand in mpi4py, on the same buffers: the
  parameter's pool block reduced into the block the graph's first AllReduce
  writes, then ``reps - 1`` reductions of that block in place (what the
  runtime does too: an AllReduce whose input has no other reader reduces in
  place, ``MPI.IN_PLACE``).  It runs on the host thread, so each call is its
  own synchronisation.

Both sides get the same warm-up, and every timed graph starts after a
barrier; the two are interleaved (ABBA), so machine noise lands on both.
Bus bandwidth = 2 (n - 1) / n x bytes / time, as nccl-tests reports it, from
the median time per graph; the ratio is the runtime's efficiency, bare time
over runtime time, the median over neighbouring pairs of graphs (a burst of
load from elsewhere hits both halves of a pair; target >= 0.9).  Rank 0
prints.
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

WARMUP = 3


def parse_size(s: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(s[:-1]) * units[s[-1].upper()]) if s[-1].upper() in units else int(s)


def interleaved(a, b, iters: int) -> tuple[float, float, float]:
    """Median seconds per call of ``a`` and of ``b``, and the median of the
    ratios b / a within each pair of neighbouring calls: the same warm-up
    for both, then calls in ABBA order, every one started after a barrier."""
    w = world()
    for _ in range(WARMUP):
        a()
        b()
    ta, tb = [], []
    for i in range(iters):
        for fn, times in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            w.comm.Barrier()
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    ratios = np.array(ta) / np.array(tb)
    return float(np.median(ta)), float(np.median(tb)), float(np.median(ratios))


def measure(size: int, iters: int) -> tuple[float, float, float]:
    """(bare, runtime) median seconds per allreduce of ``size`` bytes, and
    the median ratio of bare to runtime time over neighbouring graphs."""
    w = world()
    MPI = w.MPI
    reps = max(1, min(16, (128 << 20) // size))
    param = Parameter(np.ones(size // 4, np.float32), name=f"buf{size}", requires_grad=False)
    v = param
    with GraphBuilder("allreduce") as b:
        for _ in range(reps):
            v = b.add(AllReduce, (v,), mean=False)
        exe = compile_graph(b.finish([]))
    x = param.data                                   # the parameter's pool block
    y = exe.arena.view(0, x.shape, x.dtype)          # the first AllReduce's output block

    def bare():
        w.comm.Allreduce(x, y, op=MPI.SUM)
        for _ in range(reps - 1):
            w.comm.Allreduce(MPI.IN_PLACE, y, op=MPI.SUM)

    def runtime():
        exe.run([])

    t_bare, t_rt, ratio = interleaved(bare, runtime, iters)
    return t_bare / reps, t_rt / reps, ratio


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64K,1M,8M,32M")
    ap.add_argument("--iters", type=int, default=40)
    args = ap.parse_args(argv)
    w = world()
    if w.size < 2:
        print("run with mpiexec -n N (N >= 2)", file=sys.stderr)
        return 2
    n = w.size
    factor = 2 * (n - 1) / n
    rows = []
    for size in map(parse_size, args.sizes.split(",")):
        bare, rt, ratio = measure(size, args.iters)
        rows.append((size, factor * size / bare / 1e9, factor * size / rt / 1e9, ratio))
    if w.rank == 0:
        print(f"allreduce bus bandwidth, {n} ranks (GB/s)")
        print(f"{'bytes':>10}  {'mpi4py':>8}  {'runtime':>8}  {'ratio':>6}")
        for size, a, b, r in rows:
            print(f"{size:>10}  {a:8.2f}  {b:8.2f}  {r:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
