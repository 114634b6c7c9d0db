"""meta.json and every table are validated on load: a wrong type, a value
out of range or a column whose total would wrap int64 is refused with one
line naming the file and the field, never wrapped into a wrong number."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import msprof
import profiles
from msprof.analysis.schema import MAX_VALUE
from msprof.errors import MsprofError
from profiles import ref_dir  # noqa: F401  (fixture)

INT64_MAX = 2**63 - 1


def _refused(path) -> str:
    """The one line ``msprof`` prints for the profile at ``path``, reading
    every table (a table's values are checked when first read)."""
    with pytest.raises(MsprofError) as e:
        p = msprof.load(path)
        for name in p._paths:
            p.table(name)
    text = str(e.value)
    assert "\n" not in text
    return text


def _set_meta(root, **fields):
    meta = json.loads((root / "meta.json").read_text())
    meta.update(fields)
    (root / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("fields, field, says", [
    ({"lost_events": "many"}, "lost_events", "must be an integer, not 'many'"),
    ({"lost_events": 1.5}, "lost_events", "must be an integer"),
    ({"lost_events": True}, "lost_events", "must be an integer"),
    ({"lost_events": -1}, "lost_events", "must be at least 0"),
    ({"events": INT64_MAX}, "events", f"must be at most {MAX_VALUE}"),
    ({"end_ns": 2**64}, "end_ns", f"must be at most {MAX_VALUE}"),
    ({"mode": "sampled"}, "mode", "must be one of trace, summary"),
    ({"command": "python train.py"}, "command", "must be a list"),
    ({"ranks": [{"rank": "0"}]}, "ranks[0].rank", "must be an integer"),
    ({"ranks": [{"pid": 3}]}, None, "'rank' is a required property"),
    ({"lost_by_cause": {"ring_full": -3}}, "lost_by_cause.ring_full", "must be at least 0"),
    ({"complete": "yes"}, "complete", "must be true or false"),
    ({"exits": [{"pid": 1, "exit_status": "ok"}]}, "exits[0].exit_status",
     "must be an integer or null"),
])
def test_meta_fields_are_typed_and_bounded(ref_dir, fields, field, says):
    _set_meta(ref_dir, **fields)
    text = _refused(ref_dir)
    assert text.startswith(f"corrupt {ref_dir / 'meta.json'}: ")
    if field:
        assert f"field {field} {says}" in text
    else:
        assert says in text


@pytest.mark.parametrize("raw, says", [
    ('{"format_version": 1, "events": NaN}', "NaN is not a number JSON allows"),
    ('{"format_version": 1, "end_ns": 1e400}', "1e400 is out of range"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"format_version": true}', "unsupported profile format version True"),
])
def test_meta_json_beyond_json(ref_dir, raw, says):
    (ref_dir / "meta.json").write_text(raw)
    assert says in _refused(ref_dir)


def test_meta_ranks_and_window(ref_dir):
    _set_meta(ref_dir, ranks=[{"rank": 0}, {"rank": 0}])
    assert _refused(ref_dir).endswith("field ranks lists rank 0 twice")
    _set_meta(ref_dir, ranks=[{"rank": 0}], start_ns=5000, end_ns=4000)
    assert _refused(ref_dir).endswith("field end_ns (4000) is before start_ns (5000)")


def test_meta_keys_the_format_does_not_list_are_let_through(ref_dir):
    _set_meta(ref_dir, written_by="a later msprof", partial={"until_ns": 3})
    assert msprof.load(ref_dir).meta["written_by"] == "a later msprof"


def _set_column(root, table, column, values, type=None):
    path = root / f"{table}.parquet"
    t = pq.read_table(path)
    arr = pa.array(values, type=type or t.schema.field(column).type)
    pq.write_table(t.set_column(t.schema.get_field_index(column), column, arr), path)


def test_an_int64_max_duration_is_refused_not_wrapped(ref_dir):
    # Summed with the other kernels it once wrapped a total to -30 ns.
    n = len(profiles.REFERENCE_KERNELS)
    _set_column(ref_dir, "kernels", "dur_ns", [INT64_MAX] + [10] * (n - 1))
    assert _refused(ref_dir) == (f"corrupt table {ref_dir / 'kernels.parquet'}: column dur_ns "
                                 f"holds {INT64_MAX}, outside [0, {MAX_VALUE}]")


def test_the_largest_value_is_pinned_on_both_sides(ref_dir):
    n = len(profiles.REFERENCE_KERNELS)
    _set_column(ref_dir, "kernels", "dur_ns", [MAX_VALUE] + [0] * (n - 1))
    p = msprof.load(ref_dir)
    assert p.kernels["dur_ns"].max() == MAX_VALUE        # accepted as it is
    assert (p.op_stats()["total_ns"] >= 0).all()
    _set_column(ref_dir, "kernels", "dur_ns", [MAX_VALUE + 1] + [0] * (n - 1))
    assert "column dur_ns holds 2305843009213693953, outside" in _refused(ref_dir)


def test_a_column_whose_total_would_wrap_is_refused(ref_dir):
    # Each value in range, their sum not: totals would not fit 64 bits.
    n = len(profiles.REFERENCE_KERNELS)
    _set_column(ref_dir, "kernels", "dur_ns", [MAX_VALUE // 2] * 2 + [0] * (n - 2))
    msprof.load(ref_dir).kernels                         # MAX_VALUE exactly: accepted
    _set_column(ref_dir, "kernels", "dur_ns", [MAX_VALUE // 2 + 1] * 2 + [0] * (n - 2))
    assert f"column dur_ns sums to {MAX_VALUE + 2}, past {MAX_VALUE}" in _refused(ref_dir)


@pytest.mark.parametrize("table, column, values, type, says", [
    ("steps", "start_ns", [-5, 0, 0, 0], None, "column start_ns holds -5, outside [0, "),
    ("steps", "step", [-2, 0, 1, 1], None, "column step holds -2, outside [-1, "),
    ("kernels", "rank", [2**40] * 9, pa.int64(), "column rank holds 1099511627776, outside"),
    ("kernels", "launch_ns", [2**64 - 1] * 9, pa.uint64(),
     "column launch_ns holds 18446744073709551615, outside"),
    ("kernels", "stream", [2**20] * 9, pa.int64(), "column stream holds 1048576, outside "
     "[-32768, 32767]"),
    ("steps", "dur_ns", ["1000"] * 4, pa.string(), "column dur_ns is string, not an integer"),
    ("steps", "dur_ns", [1000.0] * 4, pa.float64(), "column dur_ns is double, not an integer"),
    ("ops", "name", [1] * 6, pa.int64(), "column name is int64, not text"),
])
def test_table_columns_are_typed_and_bounded(ref_dir, table, column, values, type, says):
    _set_column(ref_dir, table, column, values, type)
    text = _refused(ref_dir)
    assert text.startswith(f"corrupt table {ref_dir / (table + '.parquet')}: ")
    assert says in text


def test_a_wider_integer_type_in_range_is_read(ref_dir):
    # A foreign writer's int64 rank or uint64 times are fine when they fit.
    _set_column(ref_dir, "steps", "rank", [0, 0, 1, 1], pa.int64())
    _set_column(ref_dir, "steps", "start_ns", [1000, 2000, 1000, 2000], pa.uint64())
    steps = msprof.load(ref_dir).steps
    assert steps["rank"].dtype == "int32" and steps["start_ns"].dtype == "int64"
    assert steps["start_ns"].tolist() == [1000, 2000, 1000, 2000]


def test_a_null_number_reads_as_its_neutral_value(ref_dir, tmp_path):
    # As a column the writer left out: a null rank is -1, a null duration 0.
    _set_column(ref_dir, "steps", "dur_ns", [1000, None, 1000, 1000])
    _set_column(ref_dir, "steps", "rank", [None, 0, 1, 1])
    p = msprof.load(ref_dir)
    assert p.steps["dur_ns"].tolist() == [1000, 0, 1000, 1000]
    assert p.steps["rank"].tolist() == [-1, 0, 1, 1] and p.steps["rank"].dtype == "int32"
    from msprof.analysis.exporters import chrome
    trace = json.loads(chrome.export(p, tmp_path / "t.json").read_text())
    assert {e.get("dur") for e in trace["traceEvents"] if e.get("cat") == "step"} >= {0}


def test_summary_histograms_are_checked(tmp_path):
    root = profiles.summary_reference(tmp_path / "s")
    t = pq.read_table(root / "kernel_summary.parquet")
    hist = t["hist"].to_pylist()
    hist[0] = hist[0][:5]
    _set_column(root, "kernel_summary", "hist", hist)
    assert "column hist has 1 list(s) that are not 48 long" in _refused(root)
    hist[0] = [-1] * 48
    _set_column(root, "kernel_summary", "hist", hist)
    assert "column hist holds -1, outside [0, " in _refused(root)


def test_node_directories_whose_totals_would_wrap_together_do_not_merge(ref_dir, tmp_path):
    # Each node's durations are within the limit, the merged profile's are not.
    nodes = []
    for r in (0, 1):
        d = profiles.write_profile(tmp_path / f"node{r}", profiles.base_meta(ranks=(r,)),
                                   kernels=[profiles._k(r, 1, 0, 0, MAX_VALUE // 2 + 1, -1)])
        nodes.append(d)
    msprof.load(nodes[0]).kernels
    assert _refused(nodes) == (f"cannot merge profiles: column dur_ns of kernels sums to "
                               f"{MAX_VALUE + 2} over them, past {MAX_VALUE}")
