"""Reading the tables of a profile whose collector did not close it.

While a run goes on, each table is an Arrow IPC stream, ``<table>.arrows``
(msprof.profiler.writer), that grows batch by batch; a cleanly closed
profile has ``<table>.parquet`` instead.  A collector killed mid-write, or
a disk that filled, leaves a stream cut inside its last batch: the batches
before the cut are whole and are read, the cut one is dropped (it was
never complete).  An empty stream (killed before its first write) reads as
a table with no rows.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

CHUNKS = ".arrows"


def table_file(root: Path, name: str) -> Path | None:
    """The file holding table ``name``'s data: its Parquet file, or, in a
    profile that was not closed, its stream of chunks; None if neither."""
    for suffix in (".parquet", CHUNKS):
        path = root / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def is_chunks(path: Path) -> bool:
    return path.suffix == CHUNKS


def _batches(path: Path):
    """The stream's schema (None if it holds none yet) and its whole batches."""
    with pa.OSFile(str(path)) as source:      # copies: the batches outlive the file
        try:
            reader = ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError):
            return None, []
        batches = []
        while True:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError):      # the batch being written when it stopped
                break
        return reader.schema, batches


def read_schema(path: Path) -> pa.Schema | None:
    """The stream's schema; None when the collector died before writing it."""
    with pa.OSFile(str(path)) as source:
        try:
            return ipc.open_stream(source).schema
        except (pa.ArrowInvalid, OSError):
            return None


def partial_note(meta: dict) -> str:
    """Why a profile is partial and up to when it holds data, in words
    (``stopped`` and ``recorded_until_ns`` as the writer left them)."""
    why = meta.get("stopped") or "its collector ended before closing it"
    until, start = meta.get("recorded_until_ns"), meta.get("start_ns")
    if isinstance(until, int) and isinstance(start, int) and until >= start:
        return f"partial: {why}; holds data up to {(until - start) / 1e9:.1f} s after the start"
    return f"partial: {why}"


def read_whole(path: Path) -> pa.Table | None:
    """The stream's whole batches as one table; None when it holds no schema."""
    schema, batches = _batches(path)
    return None if schema is None else pa.Table.from_batches(batches, schema)


def read_frame(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """The stream's whole batches as a DataFrame (no rows, with the
    documented ``columns``, when it holds none)."""
    schema, batches = _batches(path)
    if schema is None:
        return pd.DataFrame({c: [] for c in columns})
    return pa.Table.from_batches(batches, schema).to_pandas()
