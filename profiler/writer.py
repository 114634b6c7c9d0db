"""Streams decoded rows into a profile directory (docs/FORMAT.md).

Rows are buffered per table and written as Parquet row groups once a table
holds ROW_GROUP rows, so memory stays bounded however long the run.
meta.json is written when the directory is opened (``complete: false``) and
rewritten, atomically, when it is closed.
"""
from __future__ import annotations

import json
import os
import socket

import pyarrow as pa
import pyarrow.parquet as pq

from msprof.errors import MsprofError
from msprof.profiler.decode import SCHEMAS

FORMAT_VERSION = 1
ROW_GROUP = 256 * 1024


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

    def add(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            if table.num_rows == 0:
                continue
            self._pending[name].append(table)
            self._pending_rows[name] += table.num_rows
            self.rows[name] += table.num_rows
            if self._pending_rows[name] >= ROW_GROUP:
                self._flush(name)

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
        for name in SCHEMAS:
            self._flush(name)
            self._writers[name].close()
        self.meta.update(final_meta)
        self.meta["tables"] = dict(self.rows)
        self.meta["complete"] = True
        self.write_meta()
