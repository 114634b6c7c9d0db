"""Opening profile directories: finding them, validating them, reading their
tables, merging several by rank.

:func:`open_dirs` checks directories against docs/FORMAT.md and returns the
merged meta and the table files a :class:`~msprof.analysis.profile.Profile`
reads on first use (:func:`read_table`; the exporters stream them with
:func:`iter_batches`).  Every mistake (no such directory, no or corrupt
meta.json, an unsupported format version, a field of the wrong type or out
of range, a missing, corrupt or mistyped table, a value out of range)
becomes one :class:`~msprof.errors.MsprofError` line naming the file and
the field.  A null number reads as its column's neutral value, as a column
a writer left out does.  Validation happens here, once: the analyses can
trust every value they get.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from msprof.analysis import chunks as _chunks
from msprof.analysis import memo
from msprof.analysis.meta_schema import check_meta
from msprof.analysis.schema import (
    COLUMNS, DEFAULTS, FORMAT_VERSION, LIST_COLUMNS, MAX_VALUE, OPTIONAL,
)
from msprof.analysis.table_check import check_schema, check_values
from msprof.errors import MsprofError

PathLike = Union[str, "os.PathLike[str]"]

JOB_FILE = "job.json"      # written by a multi-machine run (msprof.profiler.nodes)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _read_json(path: Path, what: str, root: Path) -> object:
    """A JSON file as parsed; NaN, Infinity and numbers past a float are
    refused (they would reach ``report -f json`` and break it there)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise MsprofError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise MsprofError(f"corrupt {what} in {root}: not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise MsprofError(f"corrupt {what} in {root}: {e.msg} at line {e.lineno}") from None
    except ValueError as e:
        raise MsprofError(f"corrupt {what} in {root}: {_first_line(e)}") from None
    except RecursionError:
        raise MsprofError(f"corrupt {what} in {root}: nested too deeply") from None


def _read_meta(root: Path) -> dict:
    if not root.exists():
        raise MsprofError(f"no such profile directory: {root}")
    if not root.is_dir():
        raise MsprofError(f"not a profile directory: {root} (not a directory)")
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise MsprofError(f"not a profile directory: {root} (no meta.json)")
    meta = _read_json(meta_path, "meta.json", root)
    if not isinstance(meta, dict):
        raise MsprofError(f"corrupt meta.json in {root}: not a JSON object")
    version = meta.get("format_version")
    if version is None:
        raise MsprofError(f"corrupt meta.json in {root}: no format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise MsprofError(
            f"unsupported profile format version {version!r} in {root} "
            f"(this msprof reads version {FORMAT_VERSION})"
        )
    return check_meta(meta, meta_path)


def _check_table(root: Path, name: str) -> Path | None:
    """Reads the table's footer only: a missing file, a damaged footer, a
    missing column or one of the wrong type is found at load time, the rows
    are read (and their values checked) on first use.  None for an
    :data:`OPTIONAL` table the directory lacks."""
    path = _chunks.table_file(root, name)   # of an unclosed profile: its chunks
    if path is None and name in OPTIONAL:
        return None
    if path is None:
        raise MsprofError(f"corrupt profile {root}: no {name}.parquet")
    try:
        schema = _chunks.read_schema(path) if _chunks.is_chunks(path) else pq.read_schema(path)
    except (pa.ArrowException, OSError) as e:
        raise MsprofError(f"corrupt table {path}: {_first_line(e)}") from None
    if schema is None:                      # a stream its collector never wrote to
        return path
    check_schema(name, schema, path)
    return path


def read_table(name: str, paths: Sequence[Path | None]) -> pd.DataFrame:
    """Table ``name`` of every directory (``None``: one without the file),
    checked, with FORMAT.md's columns and dtypes, as one read-only frame."""
    frames = []
    totals: dict[str, int] = {}
    for path in paths:
        if path is None:
            frames.append(_conform(name, pd.DataFrame({c: [] for c in COLUMNS[name]})))
            continue
        cols = {}
        try:
            for col, values in read_columns(path):
                if col in COLUMNS[name]:
                    values = _filled(name, col, values)
                    totals[col] = totals.get(col, 0) + check_values(name, col, values, path)
                    if totals[col] > MAX_VALUE:     # each node's in range, not all together
                        raise MsprofError(f"cannot merge profiles: column {col} of {name} "
                                          f"sums to {totals[col]} over them, past {MAX_VALUE}")
                cols[col] = _to_pandas(values)
                del values
        except (pa.ArrowException, OSError) as e:
            raise MsprofError(f"corrupt table {path}: {_first_line(e)}") from None
        frames.append(_conform(name, pd.DataFrame(cols, copy=False)))
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return memo.register(df)   # read-only from here on: analyses may keep what they derive


def read_columns(path: Path) -> Iterator[tuple[str, pa.ChunkedArray]]:
    """Where a table file is read whole (:func:`iter_batches` streams one):
    its columns, one at a time, so that the decoded (Arrow) copy of a column
    is freed before the next is read and the peak stays near the table's
    own size instead of twice it.  An unclosed profile's stream of chunks
    is read whole: its whole batches (analysis/chunks.py)."""
    if _chunks.is_chunks(path):
        table = _chunks.read_whole(path)
        if table is not None:
            for field in table.schema:
                yield field.name, table.column(field.name)
        return
    with pq.ParquetFile(path) as f:
        for field in f.schema_arrow:
            yield field.name, f.read(columns=[field.name]).column(0)


def iter_batches(name: str, path: Path, columns: list[str] | None = None,
                 batch_size: int = 1 << 20) -> Iterator[pa.RecordBatch]:
    """Table ``name``'s file (``columns``: only those of them it has),
    ``batch_size`` rows at a time, for the exporters that stream a table
    instead of loading it: each batch filled and checked as
    :func:`read_table` fills and checks a whole column (but for column
    totals, which a stream never forms), every failure one line."""
    try:
        if _chunks.is_chunks(path):
            table = _chunks.read_whole(path)
            if table is None:
                return
            schema = table.schema
            if columns is not None:
                table = table.select([c for c in columns if c in schema.names])
            batches = table.to_batches(max_chunksize=batch_size)
        else:
            f = pq.ParquetFile(path)
            schema = f.schema_arrow
            if columns is not None:         # those the file has
                columns = [c for c in columns if c in schema.names]
            batches = f.iter_batches(batch_size=batch_size, columns=columns)
        check_schema(name, schema, path)
        for batch in batches:
            cols = []
            for field, values in zip(batch.schema, batch.columns):
                if field.name in COLUMNS[name]:
                    values = _filled(name, field.name, values)
                    check_values(name, field.name, pa.chunked_array([values]), path,
                                 totals=False)
                cols.append(values)
            yield pa.RecordBatch.from_arrays(cols, names=batch.schema.names)
    except (pa.ArrowException, OSError) as e:
        raise MsprofError(f"corrupt table {path}: {_first_line(e)}") from None


def _filled(name: str, col: str, values):
    """A number column (Array or ChunkedArray) with its nulls as the column's
    neutral value, as a column a writer left out reads, before its values
    are checked or converted (text and list columns convert their nulls
    themselves)."""
    dtype = COLUMNS[name][col]
    if not values.null_count or dtype == "object" or col in LIST_COLUMNS:
        return values
    if pa.types.is_null(values.type):
        values = values.cast(pa.bool_() if dtype == "bool" else pa.int64())
    return pc.fill_null(values, pa.scalar(DEFAULTS.get(col, 0), values.type))


def _to_pandas(col: pa.ChunkedArray):
    """Integer columns without nulls become numpy arrays as they are; the
    others convert as ``to_pandas`` converts them."""
    plain = pa.types.is_integer(col.type) and col.null_count == 0 and col.num_chunks
    return col.to_numpy() if plain else col.to_pandas()


def _conform(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Gives the frame every column FORMAT.md lists, with its documented dtype
    (extra columns are kept), so analyses never guess.  The values were
    checked against the dtype's range before, so no cast wraps."""
    for col, dtype in COLUMNS[name].items():
        if col in LIST_COLUMNS:
            df[col] = _int_lists(df[col] if col in df.columns else None, df.index)
            continue
        if col not in df.columns:
            df[col] = DEFAULTS.get(col, 0)
        if dtype == "object":
            df[col] = df[col].astype(object).where(df[col].notna(), "")
        elif str(df[col].dtype) != dtype:
            df[col] = df[col].fillna(DEFAULTS.get(col, 0)).astype(dtype)
    extra = [c for c in df.columns if c not in COLUMNS[name]]
    return df[list(COLUMNS[name]) + extra]


def _int_lists(values: pd.Series | None, index: pd.Index) -> pd.Series:
    """A list column as one int64 numpy array per row; a missing list (or
    column) becomes an empty array.  Arrow hands lists over as arrays or
    None, which the generic object conversion would turn into "".  One step
    per row: the tables with list columns hold a row per operator, not per
    event."""
    def one(v):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return np.zeros(0, "int64")
        return np.asarray(v, dtype="int64")

    rows = [None] * len(index) if values is None else values.tolist()
    return pd.Series([one(v) for v in rows], index=index, dtype=object)


def _merge_meta(metas: list[dict], roots: list[Path]) -> dict:
    if len(metas) == 1:
        meta = dict(metas[0])
        meta["sources"] = [str(roots[0])]
        return meta
    seen: dict[int, Path] = {}
    for meta, root in zip(metas, roots):
        for r in meta.get("ranks") or []:
            rank = r["rank"]
            if rank in seen:
                raise MsprofError(
                    f"cannot merge profiles: rank {rank} is in both {seen[rank]} and {root}"
                )
            seen[rank] = root
    merged = dict(metas[0])
    merged["host"] = ",".join(dict.fromkeys(str(m.get("host", "?")) for m in metas))
    merged["ranks"] = sorted((r for m in metas for r in (m.get("ranks") or [])),
                             key=lambda r: r["rank"])
    merged["pids"] = [p for m in metas for p in (m.get("pids") or [])]
    merged["probes"] = sorted({p for m in metas for p in (m.get("probes") or [])})
    merged["lost_events"] = sum(m.get("lost_events") or 0 for m in metas)
    causes: dict[str, int] = {}
    for m in metas:
        for cause, n in (m.get("lost_by_cause") or {}).items():
            causes[cause] = causes.get(cause, 0) + n
    merged["lost_by_cause"] = causes
    merged["events"] = sum(m.get("events") or 0 for m in metas)
    statuses = [m.get("exit_status") or 0 for m in metas]
    merged["exit_status"] = next((s for s in statuses if s != 0), 0)
    merged["failed_ranks"] = [f for m in metas for f in (m.get("failed_ranks") or [])]
    merged["complete"] = all(m.get("complete", True) for m in metas)
    tables: dict[str, int] = {}
    for m in metas:
        for t, n in (m.get("tables") or {}).items():
            tables[t] = tables.get(t, 0) + n
    merged["tables"] = tables
    # Each node's CLOCK_MONOTONIC has its own origin: the window is only
    # meaningful per source.
    merged.pop("start_ns", None)
    merged.pop("end_ns", None)
    merged["sources"] = [str(r) for r in roots]
    return merged


def _job_roots(root: Path) -> tuple[list[Path], dict | None]:
    """The profile directories ``root`` stands for, and its job.json (or None).

    A directory with its own meta.json is one profile.  A job directory of a
    multi-machine run stands for the ``nodes`` its job.json lists, or,
    without one, for every subdirectory holding a meta.json (node
    directories copied into one folder).  Anything else is a one-line error.
    """
    if not root.is_dir() or (root / "meta.json").exists():
        return [root], None                    # _read_meta words its errors
    job_path = root / JOB_FILE
    if job_path.is_file():
        job = _read_json(job_path, JOB_FILE, root)
        nodes = job.get("nodes") if isinstance(job, dict) else None
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise MsprofError(f"corrupt {JOB_FILE} in {root}: no list of nodes")
        if not nodes:
            raise MsprofError(f"job directory {root} holds no node profile "
                              f"(exit status {job.get('exit_status', '?')})")
        return [root / n for n in nodes], job
    nodes = sorted(d for d in root.iterdir() if (d / "meta.json").is_file())
    if not nodes:
        raise MsprofError(f"not a profile directory: {root} (no meta.json), nor a job "
                          f"directory (no {JOB_FILE}, no subdirectory with a meta.json)")
    return nodes, None


def open_dirs(path: PathLike | Iterable[PathLike]) -> tuple[dict, dict[str, list[Path | None]]]:
    """The merged meta of one profile directory, a job directory or several
    node directories, and, per table, its file in each directory (None where
    an optional table is absent).  See :func:`msprof.analysis.profile.load`."""
    given = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not given:
        raise MsprofError("no profile directory given")
    found = [_job_roots(Path(p)) for p in given]
    roots = [r for rs, _ in found for r in rs]
    jobs = [job for _, job in found if job is not None]
    metas = [_read_meta(root) for root in roots]
    paths = {name: [_check_table(root, name) for root in roots] for name in COLUMNS}
    meta = _merge_meta(metas, roots)
    if len(jobs) == 1 and len(given) == 1:     # the job's own command, not a node's proxy
        job = meta["job"] = jobs[0]
        command = job.get("command")
        if isinstance(command, list) and all(isinstance(c, str) for c in command):
            meta["command"] = command
        status = job.get("exit_status")
        if isinstance(status, int) and not isinstance(status, bool):
            meta["exit_status"] = status
    return meta, paths
