"""Ordinary profiles that once crashed the report get one: an inference-only
run (kernels, no step: a real forward-only LeNet under ``msprof run``),
kernels whose operators are not in the ops table, zero-duration kernels,
no step, no operator, nothing at all.  ``report`` (table and json),
``diff``, ``flame`` and ``export`` succeed on each, with no negative time."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import msprof
import profiles
from conftest import REPO, run_msprof
from fuzzing import negative_times
from msprof.cli.main import app
from profiles import _k, _ops, ref_dir  # noqa: F401  (fixture)

INFERENCE = REPO / "tests" / "e2e" / "scripts" / "inference_only.py"
STEP0 = [{"rank": 0, "step": 0, "start_ns": 0, "dur_ns": 1000}]


def _invoke(*args) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 0, res.output
    return res.output


def _every_reader(root, baseline, tmp_path) -> dict:
    """Runs every reading command on ``root``; returns the report's JSON."""
    _invoke("report", root, "--steps")
    doc = json.loads(_invoke("report", "-f", "json", root))
    assert negative_times(doc) == []
    _invoke("diff", baseline, root)
    assert negative_times(json.loads(_invoke("diff", "-f", "json", root, baseline))) == []
    for metric in ("device", "launch", "comm", "memory"):
        _invoke("flame", root, "-m", metric, "--width", "100")
    for to in ("chrome", "folded", "csv"):
        _invoke("export", root, "--to", to, "-o", tmp_path / f"out.{to}", "--force")
    return doc


def test_no_step(ref_dir, tmp_path):
    root = profiles.write_profile(tmp_path / "p", ops=_ops(0), kernels=[
        _k(0, 1, 10, 10, 100, -1), _k(0, 2, 200, 200, 50, -1)])
    doc = _every_reader(root, ref_dir, tmp_path)
    assert doc["steps"] == [] and doc["devices"] == []
    assert [o["total_ns"] for o in doc["ops"]] == [100, 50]


def test_kernels_of_operators_not_in_the_ops_table(ref_dir, tmp_path):
    for name, ops in (("some", _ops(0)), ("none", [])):
        root = profiles.write_profile(tmp_path / name, ops=ops, steps=STEP0, kernels=[
            _k(0, 99, 10, 10, 100, 0), _k(0, 1, 200, 200, 50, 0)])
        doc = _every_reader(root, ref_dir, tmp_path)
        assert "op99" in [o["name"] for o in doc["ops"]]


def test_zero_duration_kernels(ref_dir, tmp_path):
    root = profiles.write_profile(tmp_path / "p", ops=_ops(0), steps=STEP0, kernels=[
        _k(0, 1, 10, 10, 0, 0), _k(0, 2, 200, 200, 0, 0)])
    doc = _every_reader(root, ref_dir, tmp_path)
    assert {o["total_ns"] for o in doc["ops"]} == {0}
    assert all(o["gflops"] is None for o in doc["ops"])    # no time: no rate, not NaN


def test_zero_length_step(ref_dir, tmp_path):
    root = profiles.write_profile(tmp_path / "p", ops=_ops(0), kernels=[_k(0, 1, 0, 0, 0, 0)],
                                  steps=[{"rank": 0, "step": 0, "start_ns": 0, "dur_ns": 0}])
    _every_reader(root, ref_dir, tmp_path)


def test_no_operator_no_kernel(ref_dir, tmp_path):
    root = profiles.write_profile(tmp_path / "p", steps=STEP0)
    doc = _every_reader(root, ref_dir, tmp_path)
    assert doc["ops"] == [] and len(doc["steps"]) == 1


def test_nothing_recorded(ref_dir, tmp_path):
    doc = _every_reader(profiles.write_profile(tmp_path / "p"), ref_dir, tmp_path)
    assert doc["findings"] == []


@pytest.fixture(scope="module")
def inference_profile(tmp_path_factory, ebpf_ready):
    out = tmp_path_factory.mktemp("inference") / "p"
    r = run_msprof("run", "-o", out, "--backend", "ebpf", INFERENCE, "--batches", 4)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.ebpf
def test_an_inference_only_run(inference_profile, ref_dir, tmp_path):
    p = msprof.load(inference_profile)
    assert p.meta["backend"] == "ebpf" and p.steps.empty
    assert len(p.kernels) == 4 * 15 and (p.kernels["step"] == -1).all()
    doc = _every_reader(inference_profile, ref_dir, tmp_path)
    assert sum(o["calls"] for o in doc["ops"]) == 60
    # and through the console script: no traceback, exit 0
    for args in (["report", inference_profile], ["diff", ref_dir, inference_profile]):
        r = run_msprof(*args)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
