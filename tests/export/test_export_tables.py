"""Parquet and CSV exports: every table, typed, rows unchanged."""
from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from profiles import ref, ref_dir  # noqa: F401  (fixtures)

from msprof.analysis.exporters import tables
from msprof.analysis.schema import COLUMNS


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_tables_round_trip(ref, tmp_path, fmt, monkeypatch):
    monkeypatch.setattr(tables, "BATCH_ROWS", 2)
    files = tables.export(ref, tmp_path / fmt, fmt)
    assert sorted(p.name for p in files) == sorted(f"{t}.{fmt}" for t in COLUMNS)
    for name in COLUMNS:
        path = tmp_path / fmt / f"{name}.{fmt}"
        df = pq.read_table(path).to_pandas() if fmt == "parquet" else pd.read_csv(
            path, keep_default_na=False)
        want = ref.table(name)
        assert list(df.columns) == list(want.columns)
        assert len(df) == len(want)
        if len(df) and fmt == "parquet":
            for col, dtype in COLUMNS[name].items():
                assert str(df[col].dtype) in (dtype, "str", "string"), (name, col)
            pd.testing.assert_frame_equal(df.reset_index(drop=True), want.reset_index(drop=True),
                                          check_dtype=False)
        elif len(df):
            assert df["rank"].tolist() == want["rank"].tolist()
