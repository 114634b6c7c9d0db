"""Every collective as a graph op on the comm stream, checked on every rank.

Rank 0 prints one JSON line per rank: the checks that failed (none expected) and
the comm probes it fired (kind, bytes, group, peer, seq) in order.
"""
import json
import sys

import numpy as np

from msprof.runtime import hooks
from msprof.runtime.comm import world
from msprof.runtime.compiler import compile_graph
from msprof.runtime.graph import GraphBuilder
from msprof.runtime.ops_comm import AllGather, AllReduce, Broadcast, ReduceScatter, Recv, Send
from msprof.runtime.parallel import get_group_size, get_rank
from msprof.runtime.planner import align

fired = []
hooks.comm_end = lambda *a: fired.append(list(a))
kernels = []
hooks.kernel_end = lambda op, stream, seq, *_: kernels.append((op, stream))


def run(build, *inputs):
    with GraphBuilder("collective") as b:
        ins = [b.input(x.shape, x.dtype) for x in inputs]
        graph = b.finish(build(b, *ins))
    return compile_graph(graph).run(list(inputs)), graph


def main():
    r, n = get_rank(), get_group_size()
    x = np.arange(24, dtype=np.float32).reshape(4, 6) + 100 * r
    total = sum(np.arange(24, dtype=np.float32).reshape(4, 6) + 100 * k for k in range(n))
    bad = []

    def check(name, got, want):
        if not np.allclose(got, want):
            bad.append(name)

    (s, m), g = run(lambda b, v: (b.add(AllReduce, (v, v), mean=False)[0],
                                  b.add(AllReduce, (v,), mean=True)), x)
    check("allreduce sum", s, total)
    check("allreduce mean", m, total / n)
    (y,), _ = run(lambda b, v: b.add(AllGather, (v,), axis=1, size=n), x)
    check("allgather", y, np.concatenate([x - 100 * r + 100 * k for k in range(n)], axis=1))
    big = np.arange(8 * n * 3, dtype=np.float32).reshape(8, n * 3) * (r + 1)
    (y,), _ = run(lambda b, v: b.add(ReduceScatter, (v,), axis=1, size=n), big)
    full = np.arange(8 * n * 3, dtype=np.float32).reshape(8, n * 3) * sum(range(1, n + 1))
    check("reduce_scatter", y, np.split(full, n, axis=1)[r])
    (y,), _ = run(lambda b, v: b.add(Broadcast, (v,), root=n - 1), x)
    check("broadcast", y, x - 100 * r + 100 * (n - 1))
    # a chain: the first reduces the feed into its own buffer, the next two
    # reduce that buffer in place (nothing else reads it); run twice
    with GraphBuilder("in place") as gb:
        v = gb.input(x.shape, x.dtype)
        chain = gb.add(AllReduce, (gb.add(AllReduce, (gb.add(AllReduce, (v,), mean=False),),
                                          mean=False),), mean=True)
        exe = compile_graph(gb.finish(chain))
    for _ in range(2):
        check("allreduce in place", exe.run([x])[0], n * total)
    if exe.arena.nbytes != align(x.nbytes):
        bad.append(f"allreduce in place: arena of {exe.arena.nbytes} bytes")
    if n > 1:                                  # a ring: send right, receive from the left
        right, left = (r + 1) % n, (r - 1) % n
        def ring(b, v):
            if r % 2 == 0:
                b.add(Send, (v,), peer=right)
                return b.add(Recv, (), shape=v.shape, peer=left)
            got = b.add(Recv, (), shape=v.shape, peer=left)
            b.add(Send, (v,), peer=right)
            return got
        (y,), _ = run(ring, x)
        check("send/recv", y, x - 100 * r + 100 * left)
    streams = sorted({s for _, s in kernels})
    mine = {"rank": r, "bad": bad, "comms": fired, "streams": streams}
    comm = world().comm                    # one line per rank, printed by rank 0
    for line in (comm.gather(mine) if comm is not None else [mine]) or ():
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
