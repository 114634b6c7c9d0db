"""``msprof diff``'s analysis: operators matched by scope and type across
runs whose op ids differ, and a verdict that follows throughput when the
batch size differs."""
from __future__ import annotations

import pytest

import msprof
from msprof.analysis.diff import REGRESSION_FRAC, diff
from profiles import base_meta, write_profile


def _op(op_id, scope, type_):
    name = f"{type_}-op{op_id}"
    return {"rank": 0, "op_id": op_id, "name": name, "type": type_, "scope": f"{scope}/{name}",
            "flops": 0, "bytes": 0}


def _run(root, layers, step_ns=1000, batch=32, steps=3):
    """One rank; ``layers`` is a list of (scope, type, kernel ns), each an
    operator registered in that order (op ids 1, 2, ...), each run once per
    step; every step lasts ``step_ns`` and trains on ``batch`` samples."""
    ops, kernels, rows = [], [], []
    for st in range(steps):
        t0 = (st + 1) * 10 * step_ns
        rows.append({"rank": 0, "step": st, "start_ns": t0, "dur_ns": step_ns, "samples": batch})
        t = t0
        for i, (_, _, dur) in enumerate(layers, 1):
            kernels.append({"rank": 0, "op_id": i, "start_ns": t, "dur_ns": dur, "step": st,
                            "launch_ns": t})
            t += dur
    ops = [_op(i, scope, type_) for i, (scope, type_, _) in enumerate(layers, 1)]
    return msprof.load(write_profile(root, base_meta(ranks=(0,)), kernels=kernels, ops=ops,
                                     steps=rows))


def verdict(d: dict) -> dict | None:
    """The diff's regression or improvement finding (the others are B's own)."""
    found = [f for f in d["findings"] if f["kind"] in ("regression", "improvement")]
    assert len(found) <= 1
    return found[0] if found else None


BASE = [("net/fc1", "MatMul", 100), ("net/fc1", "BiasAdd", 10), ("net/fc2", "MatMul", 200),
        ("Gradients/net/fc2", "MatMul", 150), ("Gradients/net/fc2", "MatMul", 160)]


def test_operators_match_by_scope_and_type_after_a_layer_is_added(tmp_path):
    a = _run(tmp_path / "a", BASE, batch=0)          # compared per step
    # A layer in front: every later op id (and name) shifts by one.
    b = _run(tmp_path / "b", [("net/fc0", "MatMul", 50)] + BASE[:2] + [
        ("net/fc2", "MatMul", 260)] + BASE[3:], batch=0)
    ops = diff(a, b, top=None)["ops"].set_index("scope")
    assert ops.loc["net/fc0/MatMul-op1", "change"] == "new"
    assert (ops["change"] == "removed").sum() == 0
    assert (ops["change"] == "new").sum() == 1 and len(ops) == 6
    fc2 = ops.loc["net/fc2/MatMul-op4"]         # was net/fc2/MatMul-op3
    assert fc2["a_name"] == "MatMul-op3" and fc2["change"] == ""
    assert (fc2["a_ns"], fc2["b_ns"], fc2["delta_ns"]) == (200, 260, 60)
    # two operators of one type in one cell: the n-th matches the n-th
    grads = ops[ops.index.str.startswith("Gradients/net/fc2/")]
    assert sorted(zip(grads["a_name"], grads.index)) == [
        ("MatMul-op4", "Gradients/net/fc2/MatMul-op5"), ("MatMul-op5", "Gradients/net/fc2/MatMul-op6")]
    assert (grads["delta_ns"] == 0).all()


def test_a_larger_batch_with_longer_steps_is_an_improvement_by_throughput(tmp_path):
    # batch 32 in 1000 ns per step -> 128 in 2200 ns: steps +120 %, time
    # per sample 31.25 -> 17.19 ns (-45 %), throughput 1.82x
    a = _run(tmp_path / "a", BASE, step_ns=1000, batch=32, steps=8)
    b = _run(tmp_path / "b", BASE, step_ns=2200, batch=128, steps=2)
    d = diff(a, b)
    assert d["step"]["pct"] == pytest.approx(1.2)
    tp = d["throughput"]
    assert tp["basis"] == "sample" and "batch 32 -> 128" in tp["why"] and "8 -> 2 steps" in tp["why"]
    assert tp["b"]["samples_per_s"] / tp["a"]["samples_per_s"] == pytest.approx(128 / 2.2 / 32)
    assert tp["b"]["ns_per_sample"] == pytest.approx(2200 / 128)
    top = verdict(d)
    assert top["kind"] == "improvement" and top["severity"] == "info"
    assert "samples/s" in top["message"] and "compared per sample" in top["message"]
    # operators per sample: fc2's 200 ns per step is 6.25 ns/sample, then 1.5625
    fc2 = d["ops"].set_index("scope").loc["net/fc2/MatMul-op3"]
    assert (fc2["a_ns"], fc2["b_ns"]) == (pytest.approx(200 / 32), pytest.approx(200 / 128))


@pytest.mark.parametrize("b_step,kind", [
    (4000 * (1 + REGRESSION_FRAC) + 40, "regression"),   # +6 % per sample
    (4000 * (1 + REGRESSION_FRAC) - 40, None),           # +4 %: within the noise
    (4000 * (1 - REGRESSION_FRAC) - 40, "improvement"),
])
def test_the_verdict_threshold_on_time_per_sample(tmp_path, b_step, kind):
    a = _run(tmp_path / "a", BASE, step_ns=1000, batch=32)
    b = _run(tmp_path / "b", BASE, step_ns=int(b_step), batch=128)
    found = verdict(diff(a, b))
    assert (found and found["kind"]) == kind
    if kind == "regression":
        # what it costs per step of B: the extra time per sample x 128
        assert found["impact_ns"] == pytest.approx((b_step / 128 - 1000 / 32) * 128, abs=1)


def test_same_batch_compares_steps_and_says_nothing_about_it(tmp_path):
    a = _run(tmp_path / "a", BASE, step_ns=1000)
    b = _run(tmp_path / "b", BASE, step_ns=1500)
    d = diff(a, b)
    assert d["throughput"]["basis"] == "sample" and d["throughput"]["why"] == ""
    assert verdict(d)["kind"] == "regression" and verdict(d)["impact_ns"] == 500


def test_unknown_samples_fall_back_to_steps_and_say_so(tmp_path):
    a = _run(tmp_path / "a", BASE, step_ns=1000, batch=0, steps=4)
    b = _run(tmp_path / "b", BASE, step_ns=2200, batch=0, steps=2)
    d = diff(a, b)
    assert d["throughput"]["basis"] == "step"
    assert d["throughput"]["why"] == "4 -> 2 steps: samples per step unknown, compared per step"
    assert d["throughput"]["a"]["samples_per_s"] is None
    assert verdict(d)["kind"] == "regression"
