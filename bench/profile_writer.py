"""What writing a profile in readable chunks costs: the collector's writer
(Arrow IPC streams while the run goes, Parquet at close) against one
Parquet file per table written as the run goes (the writer before chunks,
unreadable until closed).  Synthetic kernels in decoded batches of 64k rows,
as the collector hands them over; prints CPU seconds while "collecting"
(the writer thread's work, which competes with the training) and at
close, and the bytes on disk during the run and after.

    python bench/profile_writer.py [--rows 4000000] [--compression none|lz4|zstd]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from msprof.profiler import writer as W
from msprof.profiler.decode import SCHEMAS
from msprof.profiler.outdir import OutputDir

BATCH = 65_536


def batches(rows: int):
    rng = np.random.default_rng(0)
    schema = SCHEMAS["kernels"]
    for at in range(0, rows, BATCH):
        n = min(BATCH, rows - at)
        seq = np.arange(at, at + n)
        start = 10**9 + seq * 5000
        cols = {"rank": np.zeros(n, np.int32), "pid": np.full(n, 4242, np.int32),
                "tid": np.full(n, 4243, np.int32), "op_id": seq % 43, "stream": np.zeros(n, np.int16),
                "seq": seq, "step": seq // 166, "launch_ns": start - 1500, "start_ns": start,
                "dur_ns": rng.integers(2_000, 200_000, n)}
        yield pa.table({f.name: pa.array(cols[f.name], f.type) for f in schema}, schema=schema)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def chunked(root: Path, rows: int) -> tuple[float, float, int, int]:
    out = OutputDir(str(root / "chunked"))
    w = W.ProfileWriter(out, {"start_ns": 0})
    c0 = cpu()
    for t in batches(rows):
        w.add({"kernels": t})
    while w.rows["kernels"] < rows:         # written by the writer thread
        time.sleep(0.001)
    during = cpu() - c0
    size_during = du(root / "chunked")
    c0 = cpu()
    w.close()
    closing = cpu() - c0
    out.release()
    return during, closing, size_during, du(root / "chunked")


def parquet_as_it_goes(root: Path, rows: int) -> tuple[float, float, int, int]:
    path = root / "plain"
    path.mkdir()
    c0 = cpu()
    writer = pq.ParquetWriter(path / "kernels.parquet", SCHEMAS["kernels"], compression="zstd")
    pending, n = [], 0
    for t in batches(rows):
        pending.append(t)
        n += t.num_rows
        if n >= W.ROW_GROUP:
            writer.write_table(pa.concat_tables(pending), row_group_size=W.ROW_GROUP)
            pending, n = [], 0
    during = cpu() - c0
    size_during = du(path)
    c0 = cpu()
    if pending:
        writer.write_table(pa.concat_tables(pending), row_group_size=W.ROW_GROUP)
    writer.close()
    return during, cpu() - c0, size_during, du(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--compression", choices=("none", "lz4", "zstd"), default=None,
                    help="IPC compression of the chunks (default: the writer's)")
    a = ap.parse_args()
    if a.compression:
        W.IPC_OPTIONS = ipc.IpcWriteOptions(
            compression=None if a.compression == "none" else a.compression)
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("parquet as it goes", parquet_as_it_goes), ("chunks, parquet at close", chunked)):
            during, closing, size_during, size_after = fn(Path(tmp), a.rows)
            print(f"{name:26s} {a.rows:,} rows: CPU while collecting {during:5.2f} s "
                  f"({a.rows / during / 1e6:4.1f} M rows/s), CPU at close {closing:5.2f} s, "
                  f"on disk {size_during / 2**20:6.1f} MiB during, {size_after / 2**20:6.1f} MiB after")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
