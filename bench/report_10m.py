"""The full report on a big synthetic profile: time and peak RSS.

    .venv/bin/python bench/report_10m.py [--sizes 1000000 10000000] [--ranks 8]

For each size N, writes a data-parallel profile of about N events over
``--ranks`` ranks (kernels on the compute stream, bucketed allreduces on
the communication stream with their comms rows, pool allocations and
frees, steps; one rank 30 % slower, one leaking), then, in a fresh
interpreter, loads it and builds every report section (as ``msprof report
--format json`` does) and prints the wall time and that interpreter's peak
RSS.  Target: <= 10 s and <= 2 GB at 10 M events.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from profiles import SCHEMAS, base_meta  # noqa: E402

K = 100        # compute kernels per rank-step
BUCKETS = 4    # allreduce buckets per step
MEM = 20       # allocations per rank-step (each freed, but on the leaking rank one is not)
N_OPS = 50
KDUR = 1000    # ns per compute kernel


def _write(root: Path, name: str, cols: dict) -> None:
    fields = SCHEMAS[name]
    n = len(next(iter(cols.values())))
    arrays = {}
    for f, t in fields:
        v = cols.get(f)
        if v is None:
            v = np.full(n, -1 if f in ("seq", "step", "peer") else (100 if f in ("pid", "tid") else 0))
        arrays[f] = pa.array(v, type=t)
    pq.write_table(pa.table(arrays), root / f"{name}.parquet", compression="zstd")


def generate(root: Path, events: int, ranks: int) -> int:
    per_step = ranks * (K + 2 * BUCKETS + 2 * MEM + 1)
    steps = max(events // per_step, 1)
    root.mkdir(parents=True, exist_ok=True)
    slow = np.where(np.arange(ranks) == 1, 1.3, 1.0)
    step_len = int(K * KDUR * 1.3) + 20_000
    t0 = (np.arange(steps, dtype=np.int64) * step_len + 1_000_000)

    # compute kernels: rank x step x K, back to back from the step start
    r = np.repeat(np.arange(ranks), steps * K)
    st = np.tile(np.repeat(np.arange(steps), K), ranks)
    i = np.tile(np.arange(K), ranks * steps)
    dur = (KDUR * slow[r]).astype(np.int64)
    start = t0[st] + i * dur
    op = i % N_OPS
    # allreduce buckets: issued after kernel (b+1)*K/(BUCKETS+1); all leave at the last arrival + 5 us
    rb = np.repeat(np.arange(ranks), steps * BUCKETS)
    sb = np.tile(np.repeat(np.arange(steps), BUCKETS), ranks)
    b = np.tile(np.arange(BUCKETS), ranks * steps)
    at = (b + 1) * K // (BUCKETS + 1)
    arrive = t0[sb] + at * (KDUR * slow[rb]).astype(np.int64)
    last = t0[sb] + at * int(KDUR * slow.max())
    end = last + 5_000 + b * 2_000
    kr = np.concatenate([r, rb])
    _write(root, "kernels", {
        "rank": kr, "pid": 100 + kr, "tid": 100 + kr, "op_id": np.concatenate([op, N_OPS + b]),
        "stream": np.concatenate([np.zeros(len(r), np.int16), np.ones(len(rb), np.int16)]),
        "seq": np.arange(len(kr)), "step": np.concatenate([st, sb]),
        "launch_ns": np.concatenate([start - 500, arrive - 500]),
        "start_ns": np.concatenate([start, arrive]), "dur_ns": np.concatenate([dur, end - arrive])})
    _write(root, "comms", {
        "rank": rb, "pid": 100 + rb, "tid": 200 + rb, "kind": np.full(len(rb), "allreduce", object),
        "bytes": (1 << 22) + b, "group": np.zeros(len(rb)), "peer": np.full(len(rb), -1),
        "seq": sb * BUCKETS + b, "step": sb, "start_ns": arrive, "dur_ns": end - arrive})
    # memory: MEM blocks per rank-step, allocated by kernel j, freed 10 kernels later
    rm = np.repeat(np.arange(ranks), steps * MEM)
    sm = np.tile(np.repeat(np.arange(steps), MEM), ranks)
    j = np.tile(np.arange(MEM), ranks * steps)
    ta = t0[sm] + j * 4 * KDUR
    size = np.full(len(rm), 1 << 20, np.int64)
    addr = (j.astype(np.int64) << 24)
    leak = (rm == 2) & (j == 0)
    addr = np.where(leak, (1 << 40) + sm, addr)
    fr = ~leak
    mr = np.concatenate([rm, rm[fr]])
    mts = np.concatenate([ta, ta[fr] + 10 * KDUR])
    msize = np.concatenate([size, -size[fr]])
    order = np.lexsort((mts, mr))
    mr, mts, msize = mr[order], mts[order], msize[order]
    maddr = np.concatenate([addr, addr[fr]])[order]
    mop = np.concatenate([j % N_OPS, (j % N_OPS)[fr]])[order]
    in_use = np.zeros(len(mr), np.int64)
    for rank in range(ranks):  # a cumulative sum per rank
        sel = mr == rank
        in_use[sel] = np.cumsum(msize[sel])
    _write(root, "memory", {"rank": mr, "pid": 100 + mr, "ts_ns": mts, "addr": maddr,
                            "size": msize, "op_id": mop, "in_use": in_use})
    rs = np.repeat(np.arange(ranks), steps)
    ss = np.tile(np.arange(steps), ranks)
    sdur = end.reshape(ranks, steps, BUCKETS)[:, :, -1].reshape(-1) - t0[ss]
    _write(root, "steps", {"rank": rs, "pid": 100 + rs, "step": ss, "start_ns": t0[ss],
                           "dur_ns": sdur})
    ops_r = np.repeat(np.arange(ranks), N_OPS + BUCKETS)
    oid = np.tile(np.arange(N_OPS + BUCKETS), ranks)
    names = np.array([f"Op{o}-op{o}" if o < N_OPS else f"AllReduce-op{o}" for o in oid], object)
    types = np.array([f"Type{o % 7}" if o < N_OPS else "AllReduce" for o in oid], object)
    scopes = np.array([f"net/block{o % 5}/{n}" for o, n in zip(oid, names)], object)
    _write(root, "ops", {"rank": ops_r, "op_id": oid, "graph_id": np.zeros(len(oid)),
                         "name": names, "type": types, "scope": scopes,
                         "flops": np.full(len(oid), 1_000_000), "bytes": np.full(len(oid), 100_000)})
    _write(root, "devices", {"rank": np.arange(ranks), "pid": 100 + np.arange(ranks),
                             "world_size": np.full(ranks, ranks), "kind": np.zeros(ranks),
                             "init_ns": np.zeros(ranks)})
    total = len(kr) + len(rb) + len(mr) + len(rs)
    meta = base_meta(tuple(range(ranks)), events=int(total))
    meta["tables"] = {}
    (root / "meta.json").write_text(json.dumps(meta))
    return total


CHILD = r"""
import json, resource, sys, time
t = time.perf_counter()
import msprof
from msprof.analysis.report import to_json
p = msprof.load(sys.argv[1])
doc = to_json(p.report(top=15))
text = json.dumps(doc, allow_nan=False)
elapsed = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": elapsed, "rss": rss, "findings": [f["kind"] for f in doc["findings"]],
                  "bytes": len(text)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--ranks", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(f"{'events':>12} {'time':>8} {'peak RSS':>10}  findings")
        for n in args.sizes:
            root = Path(work) / f"p{n}"
            total = generate(root, n, args.ranks)
            res = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True,
                                 text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
            if res.returncode:
                sys.exit(res.stderr)
            out = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{total:>12,} {out['seconds']:>7.2f}s {out['rss'] / 2**30:>8.2f}GB  "
                  f"{', '.join(out['findings'])}")


if __name__ == "__main__":
    main()
