"""Hostile profiles for the loader and the report: mutations of a valid
profile directory (meta.json fields, table columns, values, types, files)
and the check that every reading command survives them.

``mutate_meta`` and ``mutate_table`` apply one drawn mutation to a copy of
a valid directory; ``problems`` runs the functions behind ``msprof
report`` (table and json), ``flame`` (every metric), ``export`` (chrome,
folded) and ``diff`` on it and returns what went wrong: a traceback (any exception but
:class:`~msprof.errors.MsprofError`, which the console script turns into
one line) or a negative time in the output (JSON documents and flame frames).
"""
from __future__ import annotations

import io
import json
import re
import traceback
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st
from rich.console import Console

import msprof
import profiles
from msprof.analysis.diff import diff as diff_profiles
from msprof.analysis import flame as flame_analysis
from msprof.analysis.exporters import chrome, folded
from msprof.analysis.flame import METRICS
from msprof.analysis.report import to_json
from msprof.cli.render import flame as flame_render
from msprof.cli.reporters import diff as diff_reporter
from msprof.cli.reporters import json as json_reporter
from msprof.cli.reporters import table as table_reporter
from msprof.errors import MsprofError

I64 = (-2**63, 2**63 - 1)
EDGES = [0, -1, -2, 1, 2**31 - 1, 2**31, -2**31 - 1, 2**61, 2**61 + 1, 2**62, 2**63 - 1,
         -2**63, 2**64 - 1, 2**64]

# A JSON value of any shape, the numbers near where they stop fitting.
json_values = st.recursive(
    st.none() | st.booleans() | st.sampled_from(EDGES) | st.integers(-5, 5000)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
    | st.sampled_from(["trace", "summary", "ebpf"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=6)

META_KEYS = sorted(profiles.base_meta()) + ["argv", "mode", "exits", "folded_events",
                                            "fallback_reason", "nprocs"]
RANK_KEYS = ["rank", "pid", "host", "world_size"]

# Raw meta.json texts no JSON writer of ours would produce.
RAW_META = ['{"format_version": 1, "events": NaN}', '{"format_version": 1, "x": Infinity}',
            '{"format_version": 1, "end_ns": 1e400}', '{"format_version": 1.0}',
            '{"format_version": true}', "[" * 5000 + "]" * 5000, '{"format_version": 1',
            "\xff\xfe", "", "null", '{"format_version": "1"}']


@st.composite
def meta_mutations(draw):
    """(kind, ...) of one change to meta.json."""
    kind = draw(st.sampled_from(["set", "set", "delete", "rank_row", "raw"]))
    if kind == "raw":
        return ("raw", draw(st.sampled_from(RAW_META)))
    if kind == "rank_row":
        return ("rank_row", draw(st.integers(0, 1)), draw(st.sampled_from(RANK_KEYS)),
                draw(json_values))
    return (kind, draw(st.sampled_from(META_KEYS)), draw(json_values))


def mutate_meta(root: Path, m) -> None:
    path = root / "meta.json"
    if m[0] == "raw":
        path.write_bytes(m[1].encode("utf-8", "surrogateescape") if m[1] != "\xff\xfe"
                         else b"\xff\xfe")
        return
    meta = json.loads(path.read_text())
    if m[0] == "set":
        meta[m[1]] = m[2]
    elif m[0] == "delete":
        meta.pop(m[1], None)
    else:
        meta["ranks"][m[1]][m[2]] = m[3]
    path.write_text(json.dumps(meta))


TABLES = sorted(profiles.SCHEMAS)
OTHER_TYPES = [pa.float64(), pa.string(), pa.uint64(), pa.int8(), pa.bool_(), pa.null(),
               pa.list_(pa.int64()), pa.int32()]


@st.composite
def table_mutations(draw):
    """(table, kind, column, argument) of one change to a table file."""
    table = draw(st.sampled_from(TABLES))
    column = draw(st.sampled_from([f for f, _ in profiles.SCHEMAS[table]]))
    kind = draw(st.sampled_from(["value", "value", "value", "all", "small", "small", "type",
                                 "null", "drop_column", "drop_file", "garbage", "empty",
                                 "repeat"]))
    if kind in ("value", "all"):
        arg = draw(st.sampled_from(EDGES) | st.integers(*I64))
    elif kind == "small":       # in range, meaning something odd: unknown ids, zero times,
        # a kernel before its launch or across steps (the reference's times: 0 to 4000)
        arg = draw(st.integers(-1, 3) | st.integers(0, 5000) | st.sampled_from([99, 1000, 2000]))
    elif kind == "type":
        arg = draw(st.sampled_from(range(len(OTHER_TYPES))))
    elif kind == "garbage":
        arg = draw(st.binary(max_size=40))
    elif kind == "repeat":
        arg = draw(st.integers(2, 50))
    else:
        arg = draw(st.integers(0, 20))      # which row
    return table, kind, column, arg


def _setcol(t: pa.Table, column: str, arr) -> pa.Table:
    return t.set_column(t.schema.get_field_index(column), column, arr)


def mutate_table(root: Path, m) -> None:
    table, kind, column, arg = m
    path = root / f"{table}.parquet"
    if kind == "drop_file":
        path.unlink()
        return
    if kind == "garbage":
        data = path.read_bytes()
        path.write_bytes(arg + data[len(arg):] if arg else data[: len(data) // 2])
        return
    t = pq.read_table(path)
    if kind == "repeat":
        t = pa.concat_tables([t] * arg)
    elif kind == "empty":
        t = t.slice(0, 0)
    elif kind == "drop_column":
        t = t.drop_columns([column])
    elif kind == "type":
        target = OTHER_TYPES[arg]
        try:
            arr = t[column].cast(target, safe=False)
        except (pa.ArrowException, NotImplementedError):
            arr = pa.array([None] * len(t), type=target) if target != pa.null() else \
                pa.nulls(len(t))
        t = _setcol(t, column, arr)
    elif kind == "null" and len(t):
        values = t[column].to_pylist()
        values[arg % len(t)] = None
        t = _setcol(t, column, pa.array(values, type=t.schema.field(column).type))
    elif kind in ("value", "all", "small") and len(t):
        values = t[column].to_pylist()
        rows = range(len(t)) if kind == "all" else [hash((column, arg)) % len(t)]
        field_type = t.schema.field(column).type
        for i in rows:
            values[i] = ([arg] * profiles.HIST_BUCKETS if pa.types.is_list(field_type)
                         else str(arg) if pa.types.is_string(field_type)
                         else bool(arg) if pa.types.is_boolean(field_type) else arg)
        arr = None
        for wider in (field_type, pa.int64(), pa.uint64(), pa.float64()):
            try:        # past the column's type: written wider, as a foreign writer might
                arr = pa.array(values, type=wider)
                break
            except (pa.ArrowException, OverflowError, TypeError):
                continue
        if arr is None:
            return
        t = _setcol(t, column, arr)
    pq.write_table(t, path)


# Time fields that are differences, negative by design: a change between
# profiles, a rank's time against the mean of all.
SIGNED = re.compile(r"delta|excess")


def negative_times(doc, where: str = "") -> list[str]:
    """Time fields (``*_ns``) below zero anywhere in a JSON document, but
    the differences (:data:`SIGNED`)."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            here = f"{where}.{k}"
            if (isinstance(k, str) and k.endswith("_ns") and not SIGNED.search(k)
                    and isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0):
                out.append(f"{here} = {v}")
            out += negative_times(v, here)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += negative_times(v, f"{where}[{i}]")
    return out


def _console(buf) -> Console:
    return Console(file=buf, width=120, color_system=None)


def _commands(root: Path, base, out: Path):
    """What each reading command runs on ``root``, as (name, callable
    returning (json text or None, table text)): the functions behind the
    commands, on one loaded profile (the analyses are computed once)."""
    loaded = []

    def profile():
        if not loaded:
            loaded.append(msprof.load(root))
        return loaded[0]

    def report():
        doc = profile().report()
        text = io.StringIO()
        json_reporter.render(doc, text)
        table = io.StringIO()
        table_reporter.render(doc, _console(table), steps=True)
        return text.getvalue(), table.getvalue()

    def diff():
        doc = diff_profiles(base, profile())
        text = io.StringIO()
        json.dump(to_json(doc), text, allow_nan=False)
        table = io.StringIO()
        diff_reporter.render(doc, _console(table))
        return text.getvalue(), table.getvalue()

    def flame():
        p = profile()
        for metric in METRICS:
            if p.summary_mode and metric == "launch":
                continue
            trees = flame_analysis.trees(p, metric, per_step=not p.summary_mode)
            bad = [f"{f.name} = {f.value}" for _, root_frame in trees
                   for _, f in root_frame.walk() if f.value < 0]
            if bad:
                return json.dumps({"frames_ns": -1, "bad": bad}), ""
            flame_render.render(trees, 100, METRICS[metric])
        return None, ""

    def export():
        chrome.export(profile(), out / "trace.json")
        folded.export(profile(), out / "stacks.folded")
        return None, ""

    return [("report", report), ("diff", diff), ("flame", flame), ("export", export)]


def problems(root: Path, base, out: Path) -> list[str]:
    """What went wrong reading ``root`` with every reading command: one
    entry per traceback (its exception and innermost frame) or negative
    time; [] when each command either worked or refused in one line."""
    found = []
    for name, command in _commands(root, base, out):
        try:
            text, table = command()
        except MsprofError as e:
            if "\n" in str(e):
                found.append(f"{name}: a MsprofError of several lines: {e!r}")
            continue
        except Exception as e:  # noqa: BLE001 -- exactly what is being looked for
            frame = traceback.extract_tb(e.__traceback__)[-1]
            found.append(f"{name}: {type(e).__name__}: {str(e)[:100]} "
                         f"({Path(frame.filename).name}:{frame.lineno})")
            continue
        if text is not None:
            found += [f"{name}: negative time {n}" for n in negative_times(json.loads(text))]
    return found
