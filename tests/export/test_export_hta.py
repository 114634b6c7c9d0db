"""Holistic Trace Analysis (the PyPI package) loads the hta export of a
2-rank profile, and its temporal breakdown and comm/compute overlap agree
with msprof's own within 2 %."""
from __future__ import annotations

import json

import pytest

import msprof
from export_scenarios import dp_us

from msprof.analysis.exporters import hta as hta_export

hta = pytest.importorskip("hta.trace_analysis", reason="holistictraceanalysis not installed "
                          "(pip install -e '.[test]')")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("hta")
    profile = msprof.load(dp_us(root / "profile"))
    files = hta_export.export(profile, root / "traces")
    return profile, files, hta.TraceAnalysis(trace_dir=str(root / "traces"),
                                             include_last_profiler_step=True)


def test_files_and_rank_detection(exported):
    profile, files, analysis = exported
    assert [f.name for f in files] == ["rank0.trace.json", "rank1.trace.json"]
    for r, f in enumerate(files):
        doc = json.loads(f.read_text())
        assert doc["distributedInfo"]["rank"] == r
        kernels = [e for e in doc["traceEvents"] if e.get("cat") == "kernel"]
        launches = [e for e in doc["traceEvents"] if e.get("cat") == "cuda_runtime"]
        assert len(kernels) == len(launches) == (profile.kernels["rank"] == r).sum()
        assert {e["args"]["correlation"] for e in kernels} == {
            e["args"]["correlation"] for e in launches}
        assert any(e["name"].startswith("ncclKernel_AllReduce") for e in kernels)
    assert analysis.t.get_ranks() == [0, 1]
    assert analysis.t.get_iterations(0) == [0, 1, 2, 3]


def test_temporal_breakdown_agrees(exported):
    profile, _, analysis = exported
    theirs = analysis.get_temporal_breakdown(visualize=False).set_index("rank")
    ours = profile.step_breakdown().groupby("rank").sum(numeric_only=True)
    for r in (0, 1):
        window = ours.loc[r, "step_ns"]
        assert theirs.loc[r, "kernel_time(us)"] * 1000 == pytest.approx(window, rel=0.02)
        pairs = {
            "compute_time": ours.loc[r, "compute_ns"],
            "idle_time": ours.loc[r, "idle_ns"] + ours.loc[r, "host_gap_ns"],
            "non_compute_time": ours.loc[r, "exposed_comm_ns"],
        }
        for col, ns in pairs.items():
            assert theirs.loc[r, f"{col}_pctg"] / 100 == pytest.approx(ns / window, rel=0.02), (r, col)
    assert theirs.loc[0, "compute_time_pctg"] == pytest.approx(70, abs=2)
    assert theirs.loc[1, "compute_time_pctg"] == pytest.approx(75, abs=2)


def test_comm_compute_overlap_agrees(exported):
    profile, _, analysis = exported
    theirs = analysis.get_comm_comp_overlap(visualize=False).set_index("rank")
    ours = profile.step_breakdown().groupby("rank").sum(numeric_only=True)
    for r in (0, 1):
        mine = 100 * ours.loc[r, "overlapped_comm_ns"] / ours.loc[r, "comm_ns"]
        assert theirs.loc[r, "comp_comm_overlap_pctg"] == pytest.approx(mine, abs=2)
