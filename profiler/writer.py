"""Streams decoded rows into a profile directory (docs/FORMAT.md).

Rows are buffered per table and written as Parquet row groups once a table
holds ROW_GROUP rows, so memory stays bounded however long the run.  The
compression and the writes happen on a thread of their own (pyarrow releases
the GIL there), so the drain loop never stalls behind a row group while the
ring buffer fills.
meta.json is written when the directory is opened (``complete: false``) and
rewritten, atomically, when it is closed.
"""
from __future__ import annotations

import json
import os
import queue
import socket
import threading

import pyarrow as pa
import pyarrow.parquet as pq

from msprof.errors import MsprofError
from msprof.profiler.decode import SCHEMAS

FORMAT_VERSION = 1
ROW_GROUP = 128 * 1024
QUEUED_BATCHES = 256  # backlog bound: beyond it the drain waits (and the ring may fill)


class ProfileWriter:
    def __init__(self, path: str, meta: dict):
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise MsprofError(f"cannot create profile directory {path}: {e.strerror}") from e
        if os.path.exists(os.path.join(path, "meta.json")):
            raise MsprofError(f"{path} already holds a profile; choose another -o")
        self.meta = {
            "format_version": FORMAT_VERSION,
            "host": socket.gethostname(),
            "clock": "CLOCK_MONOTONIC",
            "complete": False,
            **meta,
        }
        self.rows = {name: 0 for name in SCHEMAS}
        self._pending: dict[str, list[pa.Table]] = {name: [] for name in SCHEMAS}
        self._pending_rows = {name: 0 for name in SCHEMAS}
        self._writers = {
            name: pq.ParquetWriter(os.path.join(path, f"{name}.parquet"), schema,
                                   compression="zstd")
            for name, schema in SCHEMAS.items()
        }
        self.write_meta()
        self._queue: queue.Queue = queue.Queue(QUEUED_BATCHES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_loop, name="msprof-writer", daemon=True)
        self._thread.start()

    def add(self, tables: dict[str, pa.Table]) -> None:
        if self._error:
            raise MsprofError(f"cannot write the profile to {self.path}: {self._error}")
        tables = {n: t for n, t in tables.items() if t.num_rows}
        for name, table in tables.items():
            self.rows[name] += table.num_rows
        if tables:
            self._queue.put(tables)

    def _write_loop(self) -> None:
        while True:
            tables = self._queue.get()
            if tables is None:
                return
            try:
                for name, table in tables.items():
                    self._pending[name].append(table)
                    self._pending_rows[name] += table.num_rows
                    if self._pending_rows[name] >= ROW_GROUP:
                        self._flush(name)
            except Exception as e:  # disk full, ...: reported by the next add/close
                self._error = e

    def _flush(self, name: str) -> None:
        if self._pending[name]:
            self._writers[name].write_table(pa.concat_tables(self._pending[name]),
                                            row_group_size=ROW_GROUP)
            self._pending[name] = []
            self._pending_rows[name] = 0

    def write_meta(self) -> None:
        tmp = os.path.join(self.path, ".meta.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.meta, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, os.path.join(self.path, "meta.json"))

    def close(self, **final_meta) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error:
            raise MsprofError(f"cannot write the profile to {self.path}: {self._error}")
        for name in SCHEMAS:
            self._flush(name)
            self._writers[name].close()
        self.meta.update(final_meta)
        self.meta["tables"] = dict(self.rows)
        self.meta["complete"] = True
        self.write_meta()
