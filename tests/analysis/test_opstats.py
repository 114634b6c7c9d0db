"""Per-operator statistics on profiles whose answers are known by construction
(see tests/profiles.py, ``reference``)."""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msprof.analysis import opstats
from profiles import one_row as _row
from profiles import clean_profile, ref, ref_dir  # noqa: F401  (fixtures)


def test_op_stats_over_all_ranks(ref):
    s = ref.op_stats()
    assert list(s["name"]) == ["MatMul-op1", "ReLU-op2", "AllReduce-op3"]
    mm = _row(s, name="MatMul-op1")
    assert (mm.calls, mm.total_ns, mm.self_ns, mm.min_ns, mm.max_ns) == (4, 1100, 1100, 200, 400)
    assert mm.mean_ns == 275 and mm.p50_ns == 250 and mm.p99_ns == pytest.approx(397)
    assert mm.share == pytest.approx(1100 / 1550)
    assert mm.step_share == pytest.approx(1100 / 4000)
    assert mm.per_step_ns == 275
    assert mm.gflops == pytest.approx(10_000) and mm.gbps == pytest.approx(1_000)
    assert mm.ranks == 2
    relu = _row(s, name="ReLU-op2")
    assert (relu.calls, relu.total_ns, relu.mean_ns, relu.p50_ns) == (4, 350, 87.5, 100)
    assert relu.per_step_ns == 75  # the 50 ns kernel ran outside any step
    assert pd.isna(relu.gflops) and relu.gbps == pytest.approx(8000 / 87.5)
    assert s["share"].sum() == pytest.approx(1.0)


def test_op_stats_per_rank(ref):
    s = ref.op_stats(per_rank=True)
    mm0 = _row(s, rank=0, name="MatMul-op1")
    assert (mm0.calls, mm0.total_ns, mm0.p50_ns) == (3, 900, 300)
    assert mm0.share == pytest.approx(900 / 1250)
    assert mm0.per_step_ns == 450 and mm0.step_share == pytest.approx(0.45)
    mm1 = _row(s, rank=1, name="MatMul-op1")
    assert (mm1.calls, mm1.total_ns, mm1.share) == (1, 200, pytest.approx(2 / 3))


def test_op_stats_of_one_rank(ref):
    s = ref.op_stats(rank=1)
    assert list(s["name"]) == ["MatMul-op1", "ReLU-op2"]
    assert list(s["calls"]) == [1, 1]
    assert s["share"].sum() == pytest.approx(1.0)
    assert list(s["per_step_ns"]) == [100, 50]


def test_type_stats(ref):
    t = ref.type_stats()
    assert list(t["type"]) == ["MatMul", "ReLU", "AllReduce"]
    mm = _row(t, type="MatMul")
    assert (mm.ops, mm.calls, mm.total_ns, mm.gflops) == (1, 4, 1100, pytest.approx(10_000))


def test_scope_stats_self_and_subtree(ref):
    s = ref.scope_stats().set_index("scope")
    assert list(s.index) == ["", "net", "net/layer1", "net/layer1/dense"]
    # AllReduce sits in "net" itself; ReLU in net/layer1; MatMul in net/layer1/dense.
    assert s.loc["net", "self_ns"] == 100 and s.loc["net", "total_ns"] == 1550
    assert s.loc["net/layer1", "self_ns"] == 350 and s.loc["net/layer1", "total_ns"] == 1450
    assert s.loc["net/layer1/dense", "self_ns"] == 1100
    assert s.loc["net/layer1/dense", "total_ns"] == 1100
    assert s.loc["net/layer1", "calls"] == 8 and s.loc["net/layer1", "self_calls"] == 4
    assert list(ref.scope_stats(depth=1)["scope"]) == ["", "net"]


def test_scope_path_strips_the_operator_name():
    scope = pd.Series(["net/a/MatMul-op1", "net/a", "/net/b/", "MatMul-op1", ""])
    name = pd.Series(["MatMul-op1", "MatMul-op2", "x", "MatMul-op1", "y"])
    assert list(opstats.scope_path(scope, name)) == ["net/a", "net/a", "net/b", "", ""]


def test_unregistered_and_rankless_operators():
    kernels = pd.DataFrame({"rank": [0, 0], "op_id": [7, 8], "dur_ns": [10, 20],
                            "start_ns": [0, 10]})
    ops = pd.DataFrame({"rank": [-1], "op_id": [7], "name": ["Conv-op7"], "type": ["Conv"],
                        "scope": ["net"], "flops": [100], "bytes": [0]})
    k = opstats.with_ops(kernels, ops)
    assert list(k["name"]) == ["Conv-op7", "op8"]
    assert list(k["type"]) == ["Conv", "?"]
    assert list(k["flops"]) == [100, 0]


kernel_rows = st.lists(
    st.tuples(st.integers(0, 2), st.integers(1, 4), st.integers(0, 5000), st.integers(1, 300)),
    min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(kernel_rows)
def test_op_stats_invariants(rows):
    kernels = pd.DataFrame(rows, columns=["rank", "op_id", "start_ns", "dur_ns"])
    ops = pd.DataFrame({"rank": [r for r in range(3) for _ in range(4)],
                        "op_id": [o for _ in range(3) for o in range(1, 5)]})
    ops = ops.assign(name="op" + ops["op_id"].astype(str), type="T", scope="net",
                     flops=1000, bytes=10)
    steps = pd.DataFrame({"rank": [0, 1, 2], "step": 0, "start_ns": 0, "dur_ns": 10_000})
    s = opstats.op_stats(kernels, ops, steps)
    assert s["calls"].sum() == len(kernels)
    assert s["total_ns"].sum() == kernels["dur_ns"].sum()
    assert s["share"].sum() == pytest.approx(1.0)
    assert (s["min_ns"] <= s["p50_ns"]).all() and (s["p50_ns"] <= s["p99_ns"]).all()
    assert (s["p99_ns"] <= s["max_ns"]).all()
    by_op = kernels.groupby("op_id")["dur_ns"]
    for r in s.itertuples():
        assert r.p50_ns == pytest.approx(by_op.get_group(r.op_id).median())
        assert r.gflops == pytest.approx(1000 / r.mean_ns)
    per_rank = opstats.op_stats(kernels, ops, steps, per_rank=True)
    assert per_rank.groupby("rank")["share"].sum().to_numpy() == pytest.approx(1.0)
