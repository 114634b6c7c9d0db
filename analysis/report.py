"""What ``msprof report`` shows, gathered as data: the header (meta.json),
per-operator statistics, the per-device and per-step breakdowns and the
findings.  ``to_json`` turns it into the one JSON document of
``msprof report --format json``."""
from __future__ import annotations

import json

import pandas as pd

OP_COLUMNS = ["op_id", "name", "type", "scope", "calls", "total_ns", "self_ns", "mean_ns",
              "p50_ns", "p99_ns", "min_ns", "max_ns", "share", "step_share", "per_step_ns",
              "flops", "bytes", "gflops", "gbps", "ranks"]


def build(profile, rank: int | None = None, top: int | None = None) -> dict:
    """``{"meta", "ops", "devices", "steps", "findings"}``: meta.json as a
    dict, the operator table (the ``top`` operators by total time, all when
    None or 0), the per-rank breakdown, the per-step breakdown (DataFrames)
    and the ranked findings (list of dicts).  ``rank`` restricts every part
    to one rank."""
    ops = profile.op_stats(rank)
    if top:
        ops = ops.head(top)
    steps = profile.step_breakdown(rank)
    devices = profile.device_breakdown(rank)
    return {
        "meta": dict(profile.meta),
        "rank": rank,
        "ops": ops[OP_COLUMNS],
        "devices": devices,
        "steps": steps,
        "findings": profile.findings(rank),
    }


def _records(df: pd.DataFrame) -> list[dict]:
    # pandas writes NaN/NA as null and numpy integers as JSON integers.
    return json.loads(df.to_json(orient="records", double_precision=15))


def to_json(doc: dict) -> dict:
    """The report as plain JSON values (DataFrames become lists of records)."""
    return {k: _records(v) if isinstance(v, pd.DataFrame) else v for k, v in doc.items()}
