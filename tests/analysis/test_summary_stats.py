"""Statistics of summary-mode profiles (kernel_summary, memory_summary), on
profiles whose answers are known by construction (tests/profiles.py,
``summary_reference``), and set against the trace-mode profile of the same
kernels."""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import msprof
import profiles
from msprof.analysis import opstats, summary_stats
from msprof.analysis.report import to_json
from msprof.analysis.schema import COLUMNS, HIST_BUCKETS
from msprof.errors import MsprofError
from profiles import one_row as _row
from profiles import ref, ref_dir, summ, summary_dir  # noqa: F401  (fixtures)

SUMMARY_LACKS = ["cpu_wait_ns", "blocked_ns"]


def _sorted(rows, keys):
    return sorted(rows, key=lambda r: tuple(r[k] for k in keys))


# Reading.

def test_a_summary_profile_loads_with_its_tables(summ):
    assert summ.summary_mode and summ.meta["mode"] == "summary"
    assert summ.kernels.empty and summ.memory.empty
    k = summ.kernel_summary
    assert list(k.columns) == list(COLUMNS["kernel_summary"])
    assert {c: str(t) for c, t in k.dtypes.items()} == COLUMNS["kernel_summary"]
    assert all(isinstance(h, np.ndarray) and h.dtype == np.int64 and len(h) == HIST_BUCKETS
               for h in k["hist"])
    assert (np.stack(k["hist"].to_numpy()).sum(axis=1) == k["calls"].to_numpy()).all()
    assert len(summ.memory_summary) == len(profiles.SUMMARY_MEMORY_ROWS)
    assert summ.ranks == [0, 1]


def test_the_hand_folded_rows_follow_the_bucket_rule():
    keys = ["rank", "op_id", "stream"]
    assert _sorted(profiles.fold_kernels(profiles.REFERENCE_KERNELS), keys) == \
        _sorted(profiles.SUMMARY_KERNELS, keys)
    assert _sorted(profiles.fold_memory(profiles.SUMMARY_MEMORY), ["rank", "op_id"]) == \
        _sorted(profiles.SUMMARY_MEMORY_ROWS, ["rank", "op_id"])


def test_a_trace_profile_has_empty_summary_tables(ref):
    assert not ref.summary_mode
    assert ref.kernel_summary.empty and ref.memory_summary.empty
    assert list(ref.kernel_summary.columns) == list(COLUMNS["kernel_summary"])


def test_profiles_written_before_the_summary_tables_still_load(ref_dir, tmp_path):
    before = msprof.load(ref_dir).op_stats()
    (ref_dir / "kernel_summary.parquet").unlink()
    (ref_dir / "memory_summary.parquet").unlink()
    p = msprof.load(ref_dir)
    assert p.kernel_summary.empty and p.memory_summary.empty
    assert list(p.memory_summary.columns) == list(COLUMNS["memory_summary"])
    pd.testing.assert_frame_equal(p.op_stats(), before)
    from msprof.analysis.exporters.tables import export
    export(p, tmp_path / "out")
    assert pq.read_table(tmp_path / "out" / "kernel_summary.parquet").num_rows == 0


def test_a_fixed_size_histogram_and_a_missing_one_read_as_arrays(summary_dir):
    path = summary_dir / "kernel_summary.parquet"
    t = pq.read_table(path)
    fixed = t.set_column(t.schema.get_field_index("hist"), "hist",
                         t.column("hist").cast(pa.list_(pa.int64(), HIST_BUCKETS)))
    pq.write_table(fixed, path)
    p = msprof.load(summary_dir)
    assert p.op_stats()["p50_ns"].tolist() == pytest.approx([256, 64 + 64 / 3, 100])
    pq.write_table(t.drop(["hist"]), path)
    k = msprof.load(summary_dir).kernel_summary
    assert [len(h) for h in k["hist"]] == [0] * len(k)


def test_summary_nodes_merge_by_rank(summ, summary_dir, tmp_path):
    dirs = []
    for r in (0, 1):
        d = tmp_path / f"node{r}"
        d.mkdir()
        meta = json.loads((summary_dir / "meta.json").read_text())
        meta["ranks"] = [x for x in meta["ranks"] if x["rank"] == r]
        (d / "meta.json").write_text(json.dumps(meta))
        for name in profiles.SCHEMAS:
            t = pq.read_table(summary_dir / f"{name}.parquet")
            pq.write_table(t.filter(pc.equal(t.column("rank"), r)), d / f"{name}.parquet")
        dirs.append(d)
    merged = msprof.load(dirs)
    assert merged.summary_mode
    pd.testing.assert_frame_equal(merged.op_stats(), summ.op_stats())
    pd.testing.assert_frame_equal(merged.summary_memory_by_op(), summ.summary_memory_by_op())


# The histogram.

def test_bucket_is_the_bit_length_and_the_last_bucket_holds_the_rest():
    d = [0, 1, 2, 3, 4, 127, 128, 255, 256, 2**46, 2**47 - 1, 2**47, 2**62]
    assert summary_stats.bucket(d).tolist() == [0, 1, 2, 2, 3, 7, 8, 8, 9, 47, 47, 47, 47]
    assert all(summary_stats.bucket([x])[0] == profiles.hist_bucket(x)
               for x in range(0, 5000, 7))


def _hist(**counts):
    h = np.zeros((1, HIST_BUCKETS), dtype=np.int64)
    for b, n in counts.items():
        h[0, int(b[1:])] = n
    return h


def test_quantiles_interpolate_inside_the_bucket_and_clamp():
    # 4 kernels in [64, 128): the median is half way through the bucket
    (p50,) = summary_stats.hist_quantiles(_hist(b7=4), [64], [127], [0.5])
    assert p50[0] == 96
    # clamped to the shortest and the longest kernel
    p0, p100 = summary_stats.hist_quantiles(_hist(b7=4), [90], [100], [0.0, 1.0])
    assert (p0[0], p100[0]) == (90, 100)
    # one kernel: every estimate is its duration
    assert [q[0] for q in summary_stats.hist_quantiles(_hist(b9=1), [300], [300],
                                                      [0.01, 0.5, 0.99])] == [300] * 3
    # zero-length kernels sit in bucket 0
    assert summary_stats.hist_quantiles(_hist(b0=3), [0], [0], [0.5])[0][0] == 0


def test_the_last_bucket_reaches_up_to_the_longest_kernel():
    top = 2**46
    (p50,) = summary_stats.hist_quantiles(_hist(b47=2), [top], [4 * top], [0.5])
    assert p50[0] == top + 0.5 * (4 * top - top)


def test_histograms_of_another_length_are_padded_or_folded_into_the_last_bucket():
    h = summary_stats.hist_matrix(pd.Series([np.ones(3, "int64"), np.arange(50)], dtype=object))
    assert h.shape == (2, HIST_BUCKETS)
    assert h[0, :3].tolist() == [1, 1, 1] and h[0, 3:].sum() == 0
    assert h[1, :-1].tolist() == list(range(47)) and h[1, -1] == 47 + 48 + 49


def test_an_empty_row_has_no_quantile():
    (p50,) = summary_stats.hist_quantiles(np.zeros((1, HIST_BUCKETS), np.int64), [0], [0], [0.5])
    assert math.isnan(p50[0])


# Operators, types, scopes: by hand (profiles.summary_reference).

def test_op_stats_from_the_summary(summ):
    s = summ.op_stats()
    assert list(s.columns) == ["op_id", "name", "type", "scope"] + [
        c for c in opstats._ORDER if c not in SUMMARY_LACKS]
    assert list(s["name"]) == ["MatMul-op1", "ReLU-op2", "AllReduce-op3"]
    mm = _row(s, name="MatMul-op1")
    assert (mm.calls, mm.total_ns, mm.self_ns, mm.min_ns, mm.max_ns, mm.mean_ns) == (
        4, 1100, 1100, 200, 400, 275)
    assert mm.p50_ns == 256                 # the end of bucket 8 [128, 256)
    assert mm.p99_ns == 400                 # 506.88 in bucket 9, clamped to the max
    assert mm.share == pytest.approx(1100 / 1550)
    assert mm.step_share == pytest.approx(1100 / 4000) and mm.per_step_ns == 275
    assert mm.gflops == pytest.approx(10_000) and mm.gbps == pytest.approx(1_000)
    assert (mm.flops, mm.bytes, mm.ranks) == (2_750_000, 275_000, 2)
    relu = _row(s, name="ReLU-op2")
    assert relu.p50_ns == pytest.approx(64 + 64 / 3)    # a third into bucket 7 [64, 128)
    assert relu.p99_ns == 100                            # 127.1, clamped
    assert relu.min_ns == 50 and relu.mean_ns == 87.5
    # every kernel counts inside a step (the 50 ns one ran outside: the
    # summary cannot tell)
    assert relu.per_step_ns == 87.5 and relu.step_share == pytest.approx(350 / 4000)
    assert pd.isna(relu.gflops) and relu.gbps == pytest.approx(8000 / 87.5)
    ar = _row(s, name="AllReduce-op3")
    assert (ar.calls, ar.p50_ns, ar.p99_ns, ar.ranks) == (1, 100, 100, 1)
    assert s["share"].sum() == pytest.approx(1.0)


def test_op_stats_per_rank_and_of_one_rank(summ):
    s = summ.op_stats(per_rank=True)
    mm0 = _row(s, rank=0, name="MatMul-op1")
    assert (mm0.calls, mm0.total_ns, mm0.min_ns, mm0.max_ns) == (3, 900, 200, 400)
    assert mm0.p50_ns == 256 + 0.25 * 256    # 1.5 of 3: a quarter into bucket 9
    assert mm0.share == pytest.approx(900 / 1250) and mm0.per_step_ns == 450
    mm1 = _row(s, rank=1, name="MatMul-op1")
    assert (mm1.calls, mm1.p50_ns, mm1.p99_ns) == (1, 200, 200)
    assert mm1.share == pytest.approx(2 / 3)
    one = summ.op_stats(rank=1)
    assert list(one["name"]) == ["MatMul-op1", "ReLU-op2"]
    assert list(one["per_step_ns"]) == [100, 50]


def test_type_and_scope_stats_from_the_summary(summ, ref):
    t = summ.type_stats()
    assert list(t["type"]) == ["MatMul", "ReLU", "AllReduce"]
    assert "cpu_wait_ns" not in t and list(t["ops"]) == [1, 1, 1]
    mm = _row(t, type="MatMul")
    assert (mm.calls, mm.total_ns, mm.p50_ns) == (4, 1100, 256)
    assert mm.gflops == pytest.approx(4 * 2_750_000 / 1100)
    # scopes hold no percentile: exactly the trace's
    pd.testing.assert_frame_equal(summ.scope_stats(), ref.scope_stats())
    pd.testing.assert_frame_equal(summ.scope_stats(per_rank=True, depth=2),
                                  ref.scope_stats(per_rank=True, depth=2))


def test_a_summary_of_no_kernels_is_empty(tmp_path):
    p = msprof.load(profiles.write_profile(tmp_path / "e", profiles.base_meta(mode="summary")))
    assert p.op_stats().empty and p.type_stats().empty and p.scope_stats().empty
    assert p.summary_memory_peaks().empty and p.summary_memory_by_op().empty


# The same kernels, traced and summarised.

def _exact_bounds(kernels: pd.DataFrame, q: float):
    """Per operator name: the lowest and highest value an estimate of the
    q-quantile may take: the buckets of the two kernels the exact
    (interpolated) percentile lies between."""
    low, high = summary_stats.bucket_bounds()
    out = {}
    for name, d in kernels.groupby("name")["dur_ns"]:
        d = np.sort(d.to_numpy())
        i = int(math.floor(q * (len(d) - 1)))
        j = min(i + 1, len(d) - 1)
        out[name] = (low[summary_stats.bucket([d[i]])[0]], high[summary_stats.bucket([d[j]])[0]])
    return out


def _compare(trace, summary):
    """The summary's per-operator numbers against the trace's: exact for
    counts and times, the percentiles inside the exact one's buckets."""
    a, b = trace.op_stats(), summary.op_stats()
    assert list(a["name"]) == list(b["name"])
    for col in ("calls", "total_ns", "self_ns", "min_ns", "max_ns", "ranks", "flops", "bytes"):
        assert a[col].tolist() == b[col].tolist(), col
    for col in ("mean_ns", "share", "gflops", "gbps"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-12)
    k = opstats.with_ops(trace.kernels, trace.ops)
    for q, col in ((0.5, "p50_ns"), (0.99, "p99_ns")):
        bounds = _exact_bounds(k, q)
        for name, exact, est in zip(a["name"], a[col], b[col]):
            lo, hi = bounds[name]
            assert lo <= exact <= hi and lo <= est <= hi, (name, col, exact, est, lo, hi)
            assert b.set_index("name").loc[name, "min_ns"] <= est <= \
                b.set_index("name").loc[name, "max_ns"]
    ta, tb = trace.type_stats(), summary.type_stats()
    assert ta[["type", "ops", "calls", "total_ns"]].equals(tb[["type", "ops", "calls", "total_ns"]])
    pd.testing.assert_frame_equal(trace.scope_stats(), summary.scope_stats())


def test_the_reference_traced_and_summarised_agree(ref_dir, tmp_path):
    trace = msprof.load(ref_dir)
    _compare(trace, msprof.load(profiles.as_summary(ref_dir, tmp_path / "s")))


def test_data_parallel_traced_and_summarised_agree_to_the_step(tmp_path):
    # every kernel runs inside a step: step shares agree too
    d = profiles.data_parallel(tmp_path / "dp", slow_rank=2, leak_rank=1)
    trace, summary = msprof.load(d), msprof.load(profiles.as_summary(d, tmp_path / "s"))
    _compare(trace, summary)
    for per_rank in (False, True):
        a, b = trace.op_stats(per_rank=per_rank), summary.op_stats(per_rank=per_rank)
        for col in ("step_share", "per_step_ns"):
            np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float))
    # memory: the leak is what BiasGrad-op4 still holds on rank 1
    held = summary.summary_memory_by_op()
    leak = _row(held, rank=1, name="BiasGrad-op4")
    assert leak.held_bytes == 3 * 256 and leak.frees == 0
    assert _row(held, rank=0, name="MatMul-op1").held_bytes == 0
    peaks = summary.summary_memory_peaks().set_index("rank")["peak"]
    assert peaks.to_dict() == trace.memory_peaks().set_index("rank")["peak"].to_dict()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 3),
                          st.one_of(st.integers(0, 300), st.integers(300, 10**7))),
                min_size=1, max_size=40))
def test_random_kernels_traced_and_summarised_agree(kernels):
    ops = [{"rank": r, "op_id": o, "name": f"Op{o}-op{o}", "type": f"Op{o}",
            "scope": f"net/b{o % 2}/Op{o}-op{o}", "flops": 1000 * o, "bytes": 10 * o}
           for r in (0, 1) for o in (1, 2, 3)]
    rows = [profiles._k(r, o, 0, 10 * i, d, 0) for i, (r, o, d) in enumerate(kernels)]
    steps = [{"rank": r, "step": 0, "start_ns": 0, "dur_ns": 10**9} for r in (0, 1)]
    with tempfile.TemporaryDirectory() as tmp:
        d = profiles.write_profile(Path(tmp) / "t", kernels=rows, ops=ops, steps=steps)
        trace = msprof.load(d)
        _compare(trace, msprof.load(profiles.as_summary(d, Path(tmp) / "s")))


# Memory.

def test_memory_views_from_the_summary(summ):
    peaks = summ.summary_memory_peaks()
    assert peaks[["rank", "peak", "name"]].values.tolist() == [
        [0, 4000, "MatMul-op1"], [1, 2148, "ReLU-op2"]]
    by_op = summ.summary_memory_by_op()
    assert by_op[["rank", "name", "allocs", "alloc_bytes", "freed_bytes", "held_bytes"]] \
        .values.tolist() == [
            [1, "(outside ops)", 1, 2048, 0, 2048],
            [0, "(outside ops)", 1, 1000, 0, 1000],
            [0, "ReLU-op2", 1, 256, 0, 256],
            [0, "MatMul-op1", 2, 3500, 3500, 0],
            [1, "ReLU-op2", 1, 100, 100, 0]]
    assert summ.summary_memory_peaks(rank=1)["peak"].tolist() == [2148]
    assert summary_stats.memory_verdict(peaks, by_op) == (
        "peak 4,000 bytes on rank 0, at an allocation by MatMul-op1; "
        "3,304 bytes still held at the end")


# The report.

def test_report_builds_only_what_a_summary_can_answer(summ):
    doc = summ.report()
    assert doc["not_recorded"] == ["devices", "steps", "imbalance", "pipeline", "hostbound",
                                   "critical_path", "findings"]
    assert {"ops", "types", "scopes", "comm", "memory"} <= set(doc)
    assert not set(doc["not_recorded"]) & set(doc)
    assert "cpu_wait_ns" not in doc["ops"] and "blocked_ns" not in doc["types"]
    assert set(doc["comm"]) == {"verdict", "collectives", "matrix"}
    assert "not recorded in summary mode" in doc["comm"]["verdict"]
    assert set(doc["memory"]) == {"verdict", "peaks", "by_op"}
    asked = summ.report(sections=["ops", "devices", "findings"])
    assert asked["not_recorded"] == ["devices", "findings"] and "devices" not in asked
    assert summ.report(sections=["memory"])["not_recorded"] == []


def test_an_ebpf_summary_leaves_out_cpu_waits_too(summary_dir):
    meta = json.loads((summary_dir / "meta.json").read_text())
    meta["backend"] = "ebpf"
    (summary_dir / "meta.json").write_text(json.dumps(meta))
    doc = msprof.load(summary_dir).report(sections=["ops", "types"])
    assert "cpu_wait_ns" not in doc["ops"] and "cpu_wait_ns" not in doc["types"]


def test_report_json_of_a_summary(summ):
    doc = json.loads(json.dumps(to_json(summ.report(top=2)), allow_nan=False))
    assert doc["meta"]["mode"] == "summary"
    assert doc["not_recorded"][0] == "devices"
    assert [(o["name"], o["calls"], o["p50_ns"]) for o in doc["ops"]] == [
        ("MatMul-op1", 4, 256), ("ReLU-op2", 4, pytest.approx(64 + 64 / 3))]
    assert doc["memory"]["by_op"][0] == {
        "rank": 1, "op_id": -1, "name": "(outside ops)", "scope": "", "allocs": 1,
        "alloc_bytes": 2048, "frees": 0, "freed_bytes": 0, "held_bytes": 2048}


def test_a_trace_report_has_no_not_recorded_key(ref):
    assert "not_recorded" not in ref.report(sections=["ops"])


@pytest.mark.parametrize("analysis", ["step_breakdown", "device_breakdown", "findings",
                                      "critical_path", "memory_peaks", "leaks", "overlap"])
def test_timeline_analyses_of_a_summary_refuse_in_one_line(summ, analysis):
    """An empty kernel table would read as a fully idle device."""
    with pytest.raises(MsprofError) as e:
        getattr(summ, analysis)()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{analysis} needs a trace-mode profile")
