"""Findings: the report contract (DESIGN.md) and what each detector flags."""
from __future__ import annotations

import profiles

import msprof
from msprof.analysis import findings as fnd
from profiles import clean_profile, ref, ref_dir  # noqa: F401  (fixtures)

CONTRACT = {"kind", "ranks", "ops", "impact_ns", "message"}


def test_reference_findings_ranked(ref):
    fs = ref.findings()
    assert [f["kind"] for f in fs] == ["device_idle", "slow_rank", "host_bound", "dominant_op"]
    for f in fs:
        assert CONTRACT <= set(f)
        assert isinstance(f["impact_ns"], int) and isinstance(f["ranks"], list)
    host = fs[2]
    assert host["ranks"] == [1] and host["ops"] == ["ReLU-op2"] and host["impact_ns"] == 350
    assert "35%" in host["message"]
    # rank 0 computes 550 ns/step, rank 1 150: at rank 1's speed, -400 ns/step
    assert fs[1]["ranks"] == [0] and fs[1]["impact_ns"] == 400
    assert fs[3]["ops"] == ["MatMul-op1"] and fs[3]["severity"] == "info"


def test_clean_profile_raises_no_alarm(clean_profile):
    fs = clean_profile.findings()
    assert all(f["severity"] == "info" for f in fs)
    assert {f["kind"] for f in fs} <= {"dominant_op"}


def test_lost_events_come_first(tmp_path):
    meta = profiles.base_meta(lost_events=12, lost_by_cause={"ringbuf_full": 12},
                              failed_ranks=[{"rank": 1, "pid": 101, "exit_status": 137}])
    p = msprof.load(profiles.write_profile(tmp_path / "lossy", meta))
    fs = p.findings()
    assert [f["kind"] for f in fs] == ["lost_events", "failed_ranks"]
    assert "12 events were lost" in fs[0]["message"] and "ringbuf_full: 12" in fs[0]["message"]
    assert fs[1]["ranks"] == [1] and "137" in fs[1]["message"]


def test_rank_order_by_severity_then_impact():
    items = [fnd._finding("a", "info", [], [], 900, "a"),
             fnd._finding("b", "warning", [], [], 10, "b"),
             fnd._finding("c", "warning", [], [], 20, "c"),
             fnd._finding("d", "error", [], [], 0, "d")]
    assert [f["kind"] for f in fnd.rank_order(items)] == ["d", "c", "b", "a"]


def test_one_rank_has_no_imbalance(ref):
    assert "slow_rank" not in {f["kind"] for f in ref.findings(rank=0)}
