"""``msprof report`` end to end: output, the JSON document, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import profiles
from msprof.cli.main import main
from profiles import clean_profile, ref, ref_dir  # noqa: F401  (fixtures)

MSPROF = str(Path(sys.executable).parent / "msprof")


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return e.value.code or 0, out, err


def test_table_report(ref_dir, capsys):
    code, out, err = run(["report", str(ref_dir)], capsys)
    assert code == 0 and err == ""
    for text in ("python train.py", "inprocess, mode trace", "MatMul-op1", "10,000",
                 "Devices", "host_bound", "0 lost"):
        assert text in out


def test_json_document(ref_dir, capsys):
    code, out, err = run(["report", str(ref_dir), "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert {"meta", "ops", "devices", "findings"} <= set(doc)
    assert doc["meta"]["format_version"] == 1 and doc["meta"]["lost_events"] == 0
    mm = doc["ops"][0]
    assert (mm["name"], mm["calls"], mm["total_ns"], mm["self_ns"], mm["p50_ns"]) == (
        "MatMul-op1", 4, 1100, 1100, 250)
    assert mm["gflops"] == pytest.approx(10_000)
    assert doc["ops"][1]["gflops"] is None  # no FLOPs: null, not NaN
    d0 = doc["devices"][0]
    assert d0["busy_ns"] + d0["host_gap_ns"] + d0["idle_ns"] == d0["step_ns"] == 1000
    assert d0["mem_peak"] == 4000
    assert [s["busy_ns"] for s in doc["steps"]] == [600, 500, 300, 0]
    assert [f["kind"] for f in doc["findings"]][:2] == ["device_idle", "slow_rank"]
    for f in doc["findings"]:
        assert {"kind", "ranks", "ops", "impact_ns", "message"} <= set(f)


def test_rank_and_top(ref_dir, capsys):
    code, out, _ = run(["report", str(ref_dir), "-f", "json", "--rank", "1", "--top", "1"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["rank"] == 1 and len(doc["ops"]) == 1
    assert [d["rank"] for d in doc["devices"]] == [1]


def test_lost_events_are_prominent(tmp_path, capsys):
    d = profiles.write_profile(tmp_path / "lossy", profiles.base_meta(lost_events=7))
    _, out, _ = run(["report", str(d)], capsys)
    assert "7 LOST" in out and "WARNING: 7 events were lost" in out
    _, out, _ = run(["report", str(d), "-f", "json"], capsys)
    assert json.loads(out)["findings"][0]["kind"] == "lost_events"


@pytest.mark.parametrize("setup, message", [
    (lambda d: d / "missing", "no such profile directory"),
    (lambda d: d, "(no meta.json)"),
    (lambda d: (d / "meta.json").write_text("{oops") and d, "corrupt meta.json"),
])
def test_bad_input_is_one_line(tmp_path, capsys, setup, message):
    code, out, err = run(["report", str(setup(tmp_path))], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("msprof: error: ") and message in err


def test_unknown_rank_is_one_line(ref_dir, capsys):
    code, _, err = run(["report", str(ref_dir), "--rank", "9"], capsys)
    assert code == 2 and err == "msprof: error: no rank 9 in this profile (ranks: 0, 1)\n"


def test_console_script_no_traceback(tmp_path, ref_dir):
    bad = subprocess.run([MSPROF, "report", str(tmp_path / "nope")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == f"msprof: error: no such profile directory: {tmp_path / 'nope'}"
    good = subprocess.run([MSPROF, "report", str(ref_dir)], capture_output=True, text=True)
    assert good.returncode == 0 and "\x1b[" not in good.stdout  # no colour in a pipe
    assert max(map(len, good.stdout.splitlines())) <= 80
