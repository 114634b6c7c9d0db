"""Parquet and CSV export: the profile's tables, typed, one file per table.

Rows stream through in record batches (bounded memory), straight from the
profile's Parquet files; every column FORMAT.md lists is present with its
documented type (a column an older writer left out is filled with its
neutral value), and extra columns are kept.  A list column (the
histogram of ``kernel_summary``) is Arrow list<int64> in Parquet and, since
CSV has no lists, a JSON array (``[0,3,1]``) in CSV.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from msprof.analysis.load import iter_batches
from msprof.analysis.schema import COLUMNS, DEFAULTS, LIST_COLUMNS, OPTIONAL

_ARROW = {"int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(), "object": pa.string(),
          "bool": pa.bool_()}
_INT_LIST = pa.list_(pa.int64())
BATCH_ROWS = 1 << 20


def _arrow_type(column: str, dtype: str) -> pa.DataType:
    return _INT_LIST if column in LIST_COLUMNS else _ARROW[dtype]


def arrow_schema(name: str, source: pa.Schema) -> pa.Schema:
    """The documented columns of table ``name`` first, then the source's extras."""
    fields = [pa.field(c, _arrow_type(c, t)) for c, t in COLUMNS[name].items()]
    extra = [f for f in source if f.name not in COLUMNS[name]]
    return pa.schema(fields + extra)


def _default(name: str, rows: int, type_: pa.DataType) -> pa.Array:
    value = [] if pa.types.is_list(type_) else DEFAULTS.get(name, 0)
    return pa.array([value] * rows, type=type_)


def _conform(batch: pa.RecordBatch, schema: pa.Schema, name: str) -> pa.RecordBatch:
    cols = []
    for f in schema:
        if f.name in batch.schema.names:
            col = batch.column(f.name)
            if col.type != f.type:
                col = pc.cast(col, f.type)
        else:
            col = _default(f.name, batch.num_rows, f.type)
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def csv_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every list column as a string (CSV has no lists)."""
    return pa.schema([pa.field(f.name, pa.string()) if pa.types.is_list(f.type) else f
                      for f in schema])


def csv_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with every list column written as a JSON array: ``[0,3,1]``."""
    cols = []
    for f, col in zip(batch.schema, batch.columns):
        if pa.types.is_list(f.type):
            inner = pc.binary_join(pc.cast(col, pa.list_(pa.string())), ",")
            col = pc.binary_join_element_wise("[", pc.fill_null(inner, ""), "]", "")
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def batches(name: str, paths: list[Path]) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Schema and record batches of table ``name`` over its source files
    (none: an optional table the profile lacks, exported empty)."""
    schema = arrow_schema(name, pq.read_schema(paths[0]) if paths else pa.schema([]))

    def gen():
        for path in paths:
            for b in iter_batches(name, path, batch_size=BATCH_ROWS):
                yield _conform(b, schema, name)

    return schema, gen()


def table_paths(profile) -> dict[str, list[Path]]:
    """Source Parquet files per table (one per profile directory that has it:
    an optional table may be missing)."""
    roots = [Path(r) for r in profile.meta.get("sources") or []]
    return {name: [r / f"{name}.parquet" for r in roots
                   if name not in OPTIONAL or (r / f"{name}.parquet").is_file()]
            for name in COLUMNS}


def export(profile, out: Path, fmt: str = "parquet") -> list[Path]:
    """Writes ``out``/<table>.parquet (zstd) or .csv for every table; returns
    the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, paths in table_paths(profile).items():
        schema, gen = batches(name, paths)
        path = out / f"{name}.{fmt}"
        if fmt == "parquet":
            with pq.ParquetWriter(path, schema, compression="zstd") as w:
                n = 0
                for b in gen:
                    w.write_batch(b)
                    n += 1
                if n == 0:
                    w.write_table(schema.empty_table())
        elif fmt == "csv":
            text = csv_schema(schema)
            with pcsv.CSVWriter(path, text) as w:
                for b in gen:
                    w.write_batch(csv_batch(b, text))
        else:
            raise ValueError(fmt)
        written.append(path)
    return written
