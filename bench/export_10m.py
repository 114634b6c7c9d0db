"""Export of a 10-million-event profile: parquet (target <= 10 s) and chrome
(streamed, bounded memory).  Prints time and peak RSS of each export, each
run in its own process so the peaks do not mix.

    python bench/export_10m.py [--events 10000000] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def make_profile(root: Path, events: int, ranks: int = 4) -> Path:
    """``events`` rows over kernels (80 %) and memory (20 %), 4 ranks, 40
    ops, steps of 2000 kernels; written with the documented schema."""
    from profiles import SCHEMAS, base_meta, write_profile

    rng = np.random.default_rng(0)
    nk, nm = int(events * 0.8), events - int(events * 0.8)
    ops = [{"rank": r, "op_id": i, "name": f"Op{i % 8}-op{i}", "type": f"Op{i % 8}",
            "scope": f"{'Gradients/' if i >= 20 else ''}net/layer{i % 5}/Op{i % 8}-op{i}",
            "flops": 1000 * i, "bytes": 100 * i} for r in range(ranks) for i in range(40)]
    root = write_profile(root, base_meta(tuple(range(ranks))), ops=ops,
                         devices=[{"rank": r, "pid": 100 + r} for r in range(ranks)])
    per = nk // ranks
    step_len = 2000
    nsteps = per // step_len + 1

    def write(name, cols, n_rows):
        schema = pa.schema([(f, t) for f, t in SCHEMAS[name]])
        with pq.ParquetWriter(root / f"{name}.parquet", schema, compression="zstd") as w:
            chunk = 1 << 21
            for a in range(0, n_rows, chunk):
                b = min(n_rows, a + chunk)
                w.write_table(pa.table({f: pa.array(cols(f, a, b), type=t) for f, t in SCHEMAS[name]}))

    i = np.arange(nk)
    rank = (i // per).clip(max=ranks - 1)
    j = i - rank * per
    start = 10**9 + j * 5000
    kcols = {"rank": rank, "pid": 100 + rank, "tid": 100 + rank, "op_id": j % 40,
             "stream": (j % 40 == 39).astype(np.int16), "seq": j, "step": j // step_len,
             "launch_ns": start - 1000, "start_ns": start,
             "dur_ns": rng.integers(500, 4500, nk)}
    write("kernels", lambda f, a, b: kcols[f][a:b], nk)
    del kcols
    m = np.arange(nm)
    mrank = (m // (nm // ranks)).clip(max=ranks - 1)
    size = np.where(m % 2 == 0, 4096, -4096)
    mcols = {"rank": mrank, "pid": 100 + mrank, "ts_ns": 10**9 + (m % (nm // ranks)) * 25000,
             "addr": m * 64, "size": size, "op_id": m % 40, "in_use": 1 << 20 + (m % 2) * 4096}
    write("memory", lambda f, a, b: mcols[f][a:b], nm)
    st = [{"rank": r, "pid": 100 + r, "step": s, "start_ns": 10**9 + s * step_len * 5000,
           "dur_ns": step_len * 5000} for r in range(ranks) for s in range(nsteps)]
    from profiles import write_table
    write_table(root, "steps", st)
    meta = json.loads((root / "meta.json").read_text())
    meta["tables"].update(kernels=nk, memory=nm, steps=len(st))
    meta["events"] = events
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def _hwm_mib() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it is not carried
    over from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(fmt: str, profile: Path, out: Path) -> None:
    import msprof
    from msprof.analysis.exporters import chrome, tables

    t0 = time.perf_counter()
    p = msprof.load(profile)
    if fmt == "chrome":
        chrome.export(p, out)
        size = out.stat().st_size
    else:
        files = tables.export(p, out, fmt)
        size = sum(f.stat().st_size for f in files)
    dt = time.perf_counter() - t0
    rss = _hwm_mib()
    print(json.dumps({"format": fmt, "seconds": round(dt, 2), "peak_rss_mib": round(rss),
                      "output_mb": round(size / 1e6, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--keep", type=Path, help="write the profile and outputs here and keep them")
    ap.add_argument("--formats", default="parquet,chrome")
    ap.add_argument("--_one", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._one:
        run_one(a._one[0], Path(a._one[1]), Path(a._one[2]))
        return
    work = a.keep or Path(tempfile.mkdtemp(prefix="msprof-bench-"))
    try:
        t0 = time.perf_counter()
        prof = make_profile(work / "profile", a.events)
        print(f"synthetic profile: {a.events:,} events in {time.perf_counter() - t0:.1f} s")
        for fmt in a.formats.split(","):
            out = work / ("trace.json" if fmt == "chrome" else fmt)
            subprocess.run([sys.executable, __file__, "--_one", fmt, str(prof), str(out)],
                           check=True)
            if fmt == "chrome":
                print(f"  (chrome events streamed in batches of "
                      f"{__import__('msprof.analysis.exporters.chrome', fromlist=['x']).BATCH_ROWS:,} rows)")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
