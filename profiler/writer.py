"""Streams decoded rows into a profile directory (docs/FORMAT.md) so that
the profile survives its collector.

While the run goes on, every table is an Arrow IPC stream, ``<table>.arrows``,
and each decoded batch is appended to it as it comes: a batch is readable
as soon as its write returns, so a collector killed at any moment (or a
disk that fills) leaves every batch but the one being written, which the
reader drops (analysis/profile.py).  meta.json is rewritten (atomically) at
each :meth:`checkpoint` with the ranks, the counts and ``recorded_until_ns``,
the latest event time the chunks hold, after the data it describes is
written.  At :meth:`close` each stream becomes the documented
``<table>.parquet`` (zstd row groups of ROW_GROUP rows), meta.json gets
``complete: true``, and the streams are removed.

The writes happen on a thread of their own (pyarrow releases the GIL
there), so the drain loop never stalls behind a write while the ring buffer
fills.  A failed write (a full disk, above all) stops the writing: what is
written stays readable, :attr:`stopped` says why, and the session stops
collecting.  Every file is opened through :class:`~msprof.profiler.outdir.OutputDir`
(no symlink followed).
"""
from __future__ import annotations

import errno
import json
import os
import queue
import socket
import threading

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from msprof.errors import MsprofError
from msprof.profiler.decode import SCHEMAS
from msprof.profiler.outdir import OutputDir

FORMAT_VERSION = 1
ROW_GROUP = 128 * 1024
QUEUED_BATCHES = 256  # backlog bound: beyond it the drain waits (and the ring may fill)
CHUNKS = ".arrows"    # suffix of a table's stream while the run goes on
# LZ4: on 2M synthetic kernels (bench/profile_writer.py) the writer thread
# spends 0.17 s of CPU with it, 0.09 s uncompressed, 0.28 s with zstd, and
# ~1 s writing zstd Parquet as it goes; LZ4 streams take 3.3x less disk
# than uncompressed ones (as much as the final Parquet), so a run does not
# need more room while it goes than after.  zstd is paid once, at close.
IPC_OPTIONS = ipc.IpcWriteOptions(compression="lz4")
# Space set aside when the profile is opened and given back when the disk
# fills, so that meta.json can still say why the profile stops where it
# does (it takes ~2 KiB; a block or two on any file system).
RESERVE = ".msprof.reserve"
RESERVE_BYTES = 64 * 1024
# The columns that say when a row's event happened (its end where it lasts).
_TIME = (("start_ns", "dur_ns"), ("ts_ns", None), ("init_ns", None))


def _latest(table: pa.Table) -> int | None:
    """The latest event time in ``table`` (its end where it has a duration)."""
    for start, dur in _TIME:
        if start in table.column_names:
            t = table[start] if dur is None else pc.add(table[start], table[dur])
            latest = pc.max(t).as_py()
            return None if latest is None else int(latest)
    return None


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return "the disk is full"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0] if str(e) else type(e).__name__


class ProfileWriter:
    def __init__(self, out: OutputDir, meta: dict):
        self.out = out
        self.path = out.path
        self.meta = {
            "format_version": FORMAT_VERSION,
            "host": socket.gethostname(),
            "clock": "CLOCK_MONOTONIC",
            "complete": False,
            **meta,
        }
        self.rows = {name: 0 for name in SCHEMAS}     # rows written (not only queued)
        self.stopped: str | None = None               # why writing stopped before close
        self._latest = 0
        try:
            self._reserve()
            self.write_meta()
            self._streams = {name: self._open_stream(name, schema)
                             for name, schema in SCHEMAS.items()}
        except OSError as e:
            raise MsprofError(f"cannot write the profile to {self.path}: {_why(e)}") from None
        self._queue: queue.Queue = queue.Queue(QUEUED_BATCHES)
        self._thread = threading.Thread(target=self._write_loop, name="msprof-writer", daemon=True)
        self._thread.start()

    def _reserve(self) -> None:
        fd = self.out.create(RESERVE)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)

    def _open_stream(self, name: str, schema: pa.Schema):
        f = os.fdopen(self.out.create(name + CHUNKS), "wb", buffering=0)
        return f, ipc.new_stream(f, schema, options=IPC_OPTIONS)

    def add(self, tables: dict[str, pa.Table]) -> None:
        """Queues decoded rows for writing; dropped once writing stopped."""
        tables = {n: t for n, t in tables.items() if t.num_rows}
        if tables and not self.stopped:
            self._queue.put(("rows", tables))

    def checkpoint(self, **fields) -> None:
        """Rewrites meta.json with ``fields`` once everything queued before
        is written, so that it never describes data the chunks lack."""
        if not self.stopped:
            self._queue.put(("meta", fields))

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.stopped:
                continue                  # keep draining: the producer must never block
            kind, payload = item
            try:
                if kind == "rows":
                    for name, table in payload.items():
                        self._streams[name][1].write_table(table)
                        self.rows[name] += table.num_rows
                        self._latest = max(self._latest, _latest(table) or 0)
                else:
                    self.meta.update(payload)
                    self._progress()
                    self.write_meta()
            except Exception as e:    # a full disk above all; any failure stops the writing
                self._stop(e)

    def _progress(self) -> None:
        self.meta["tables"] = dict(self.rows)
        if self._latest:
            self.meta["recorded_until_ns"] = self._latest

    def _stop(self, e: BaseException, when: str = "while collecting") -> None:
        self.stopped = f"cannot write the profile to {self.path} {when}: {_why(e)}"

    def write_meta(self) -> None:
        tmp = ".meta.json.tmp"
        self.out.unlink(tmp)              # left by a write that failed
        try:
            with os.fdopen(self.out.create(tmp), "w") as f:
                json.dump(self.meta, f, indent=2, sort_keys=True)
                f.write("\n")
        except BaseException:
            self.out.unlink(tmp)
            raise
        self.out.replace(tmp, "meta.json")

    def _keep_partial(self) -> None:
        """Best effort on a full disk: meta.json says why the profile stops
        where it does (the one from the last checkpoint stays otherwise)."""
        self.out.unlink(RESERVE)
        self._progress()
        self.meta["complete"] = False
        self.meta["stopped"] = self.stopped
        try:
            self.write_meta()
        except OSError:
            pass

    def close(self, **final_meta) -> None:
        """Ends the streams and, unless writing stopped, turns them into
        Parquet tables and marks the profile complete.  A failure here (a
        full disk) keeps the streams and sets :attr:`stopped`; it never
        raises for a write that failed."""
        self._queue.put(None)
        self._thread.join()
        self.meta.update(final_meta)
        for name, (f, writer) in self._streams.items():
            try:
                writer.close()
                f.close()
            except (OSError, pa.ArrowException) as e:
                if not self.stopped:
                    self._stop(e)
        if self.stopped:
            self._keep_partial()
            return
        try:
            for name in SCHEMAS:
                self._consolidate(name)
            self._progress()
            self.meta["complete"] = True
            self.write_meta()
        except (OSError, pa.ArrowException) as e:
            self._stop(e, "while closing it")
            self._keep_partial()
            return
        for name in (*(n + CHUNKS for n in SCHEMAS), RESERVE):
            self.out.unlink(name)

    def _consolidate(self, name: str) -> None:
        """``<name>.arrows`` -> ``<name>.parquet``, through a temporary file
        renamed into place: the table is either whole or still in chunks."""
        tmp = f".{name}.parquet.tmp"
        try:
            with os.fdopen(self.out.create(tmp), "wb") as f, \
                    pq.ParquetWriter(f, SCHEMAS[name], compression="zstd") as w:
                for group in self._row_groups(name):
                    w.write_table(group, row_group_size=ROW_GROUP)
            self.out.replace(tmp, f"{name}.parquet")
        except BaseException:
            self.out.unlink(tmp)
            raise

    def _row_groups(self, name: str):
        """The stream's batches, regrouped into tables of ROW_GROUP rows."""
        with os.fdopen(self.out.open_read(name + CHUNKS), "rb") as f:
            pending, rows = [], 0
            for batch in ipc.open_stream(f):
                pending.append(batch)
                rows += batch.num_rows
                if rows >= ROW_GROUP:
                    yield pa.Table.from_batches(pending, SCHEMAS[name])
                    pending, rows = [], 0
            if pending:
                yield pa.Table.from_batches(pending, SCHEMAS[name])
