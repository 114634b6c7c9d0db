"""``msprof report --section`` and ``msprof diff``."""
from __future__ import annotations

import json

import pytest

import profiles
from msprof.cli.main import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return e.value.code or 0, out, err


@pytest.fixture
def dirs(tmp_path):
    return (profiles.data_parallel(tmp_path / "a"),
            profiles.data_parallel(tmp_path / "b", slow_rank=2))


def test_sections_select(dirs, capsys):
    code, out, _ = run(["report", str(dirs[1]), "--section", "comm,imbalance",
                        "-s", "findings"], capsys)
    assert code == 0
    assert "Collectives" in out and "Load imbalance" in out and "slow_rank" in out
    assert "Operators" not in out and "Memory" not in out
    assert max(map(len, out.splitlines())) <= 80
    code, out, _ = run(["report", str(dirs[1]), "-f", "json", "-s", "critical_path"], capsys)
    doc = json.loads(out)
    assert set(doc) == {"meta", "rank", "critical_path"}
    assert [s["name"] for s in doc["critical_path"]["path"]] == [
        "MatMul-op1", "MatMulGrad-op2", "AllReduce-op3"]


def test_every_section_renders_at_80_columns(dirs, tmp_path, capsys):
    """Every section with something to show is shown; the others are named
    in one line at the end (a data-parallel job has no pipeline)."""
    for d, empty in ((dirs[1], ["pipeline"]), (profiles.pipeline(tmp_path / "pp"), ["memory"]),
                     (profiles.tiny(tmp_path / "t"), ["communication", "imbalance", "pipeline",
                                                      "memory", "critical path"])):
        code, out, err = run(["report", str(d), "--steps"], capsys)
        assert code == 0 and err == ""
        assert max(map(len, out.splitlines())) <= 80
        # one rank without communication: the breakdown's parts are the
        # devices table's, said once
        shown = [t for t in ("Step breakdown", "Communication", "Imbalance", "Pipeline",
                             "Memory", "Host-bound", "Critical path", "Findings")
                 if t.lower() not in empty and not (t == "Step breakdown" and "imbalance" in empty)]
        for title in shown:
            assert title in out, (d, title)
        flat = " ".join(out.split())
        if empty:
            named = flat[flat.index("Nothing to show: "):]
            for why in (" (no collectives)", " (one rank)", " (no stages)", " (no pool events)"):
                named = named.replace(why, "")
            assert named == "Nothing to show: " + ", ".join(empty) + "."


def test_unknown_section_is_one_line(dirs, capsys):
    code, out, err = run(["report", str(dirs[0]), "-s", "nope"], capsys)
    assert code == 2 and err.startswith("msprof: error: no report section 'nope'")


def test_diff_json(dirs, capsys):
    code, out, _ = run(["diff", str(dirs[0]), str(dirs[1]), "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["step"]["a_ns"] == 4000 and doc["step"]["b_ns"] == 6000
    assert doc["step"]["pct"] == pytest.approx(0.5)
    kinds = [(f["kind"], f["change"]) for f in doc["findings"]]
    assert kinds[:2] == [("regression", "appeared"), ("slow_rank", "appeared")]
    for f in doc["findings"]:
        assert {"kind", "ranks", "ops", "impact_ns", "message"} <= set(f)
    assert doc["findings"][0]["impact_ns"] == 2000
    dev = {d["rank"]: d for d in doc["devices"]}
    assert dev[2]["compute_ns_delta"] == 2000 and dev[0]["exposed_comm_ns_delta"] == 2000
    assert doc["vanished"] == []
    code, out, _ = run(["diff", str(dirs[1]), str(dirs[0]), "-f", "json"], capsys)
    back = json.loads(out)
    assert [f["kind"] for f in back["vanished"]] == ["slow_rank"]
    assert back["findings"][0]["kind"] == "improvement"


def test_diff_table(dirs, capsys):
    code, out, _ = run(["diff", str(dirs[0]), str(dirs[1])], capsys)
    assert code == 0 and "4us -> 6us (+2us, +50.0%)" in out and "regression" in out
    assert max(map(len, out.splitlines())) <= 80


def test_diff_missing_dir_is_one_line(dirs, tmp_path, capsys):
    code, _, err = run(["diff", str(dirs[0]), str(tmp_path / "nope")], capsys)
    assert code == 2 and err.count("\n") == 1 and "no such profile directory" in err
