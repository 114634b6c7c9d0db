"""Checks of a table file against docs/FORMAT.md, column by column: its
type (from the footer, at load time) and its values (when the column is
read): every value in its range (:data:`~msprof.analysis.schema.RANGES`,
else its dtype's), and no column whose total would wrap int64.  Each failure is one
:class:`~msprof.errors.MsprofError` line naming the file and the column.

The checks run on the Arrow column, before any conversion: a uint64 or an
int64 too big for an int32 column is seen as it is, never wrapped first.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from msprof.analysis.schema import COLUMNS, LIST_COLUMNS, MAX_VALUE, RANGES, REQUIRED, SUMMED
from msprof.errors import MsprofError


def _fits(name: str, col: str, t: pa.DataType) -> bool:
    if pa.types.is_null(t):          # every value null (or no rows): judged by the values
        return True
    dtype = COLUMNS[name][col]
    if dtype == "object" and pa.types.is_dictionary(t):     # pandas writes categoricals so
        t = t.value_type
    if col in LIST_COLUMNS:
        return ((pa.types.is_list(t) or pa.types.is_large_list(t)
                 or pa.types.is_fixed_size_list(t))
                and (pa.types.is_integer(t.value_type) or pa.types.is_null(t.value_type)))
    if dtype == "object":
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    if dtype == "bool":
        return pa.types.is_boolean(t)
    return pa.types.is_integer(t)


def _expected(name: str, col: str) -> str:
    dtype = COLUMNS[name][col]
    if col in LIST_COLUMNS:
        return "a list of integers"
    return {"object": "text", "bool": "true/false"}.get(dtype, "an integer")


def check_schema(name: str, schema: pa.Schema, path: Path) -> None:
    """The footer of ``name``'s file: every column the reader needs is
    there, and every known column has a type it can read."""
    missing = [c for c in REQUIRED[name] if c not in schema.names]
    if missing:
        raise MsprofError(f"corrupt table {path}: no column {', '.join(missing)}")
    for field in schema:
        if field.name in COLUMNS[name] and not _fits(name, field.name, field.type):
            raise MsprofError(f"corrupt table {path}: column {field.name} is {field.type}, "
                              f"not {_expected(name, field.name)}")


def _bounds(name: str, col: str) -> tuple[int, int]:
    if col in RANGES:
        return RANGES[col]
    info = np.iinfo(COLUMNS[name][col])
    return int(info.min), int(info.max)


def check_values(name: str, col: str, values: pa.ChunkedArray, path: Path,
                 totals: bool = True) -> int:
    """The values of one known column of ``name`` (text and boolean columns:
    no check); ``totals``: the column's total too.  Returns that total (0
    for a column not summed): the loader adds up the files of several
    nodes.  The loader has filled a number column's nulls with its neutral
    value before; a null inside a list is refused."""
    dtype = COLUMNS[name][col]
    if dtype in ("object", "bool") and col not in LIST_COLUMNS:
        return 0
    if values.null_count == len(values):
        return 0
    if col in LIST_COLUMNS:
        lengths = pc.list_value_length(values)
        bad = pc.sum(pc.and_(pc.not_equal(lengths, LIST_COLUMNS[col]),
                             pc.not_equal(lengths, 0))).as_py()
        if bad:
            raise MsprofError(f"corrupt table {path}: column {col} has {bad} list(s) that are "
                              f"not {LIST_COLUMNS[col]} long")
        values = pc.list_flatten(values.filter(pc.is_valid(values)))
        if values.null_count:
            raise MsprofError(f"corrupt table {path}: column {col} has empty (null) entries")
        if not len(values):
            return 0
    lo, hi = _bounds(name, col)
    mm = pc.min_max(values)
    least, most = mm["min"].as_py(), mm["max"].as_py()
    if least < lo or most > hi:
        worst = least if least < lo else most
        raise MsprofError(f"corrupt table {path}: column {col} holds {worst}, outside "
                          f"[{lo}, {hi}]")
    if not (totals and col in SUMMED):
        return 0
    total = _exact_abs_sum(values)
    if total > MAX_VALUE:
        raise MsprofError(f"corrupt table {path}: column {col} sums to {total}, past "
                          f"{MAX_VALUE}: its totals would not fit 64 bits")
    return total


def _exact_abs_sum(values: pa.ChunkedArray) -> int:
    """The sum of the absolute values, exactly (a float sum rounds near the
    limit), without wrapping: each value (at most MAX_VALUE = 2**61 by now)
    is split into its high and low 32 bits, and each half summed in int64."""
    v = np.abs(values.to_numpy().astype("int64"))
    return (int(np.sum(v >> 32)) << 32) + int(np.sum(v & 0xFFFFFFFF))
