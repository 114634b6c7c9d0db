"""The commands on a summary-mode profile: report (table and JSON), flame,
diff and export (tests/profiles.py, ``summary_reference``)."""
from __future__ import annotations

import json
from io import StringIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

import msprof
import profiles
from msprof.analysis import flame
from msprof.analysis.diff import diff
from msprof.analysis.exporters import chrome, folded, tables
from msprof.analysis.schema import COLUMNS, HIST_BUCKETS
from msprof.cli.main import main
from msprof.cli.reporters import diff as diff_reporter
from msprof.cli.reporters import table
from msprof.errors import MsprofError
from profiles import frame_at as _find
from profiles import ref, ref_dir, summ, summary_dir  # noqa: F401  (fixtures)


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return e.value.code or 0, out, err


def _text(doc, width=80) -> str:
    console = Console(width=width, file=StringIO(), color_system=None)
    table.render(doc, console)
    return console.file.getvalue()


# report

def test_table_report_of_a_summary(summ):
    out = _text(summ.report())
    assert max(map(len, out.splitlines())) <= 80
    assert "inprocess, mode summary" in out
    flat = " ".join(out.split())
    assert ("Summary mode: per-operator totals and histograms only; not recorded: devices, "
            "steps, imbalance, pipeline, hostbound, critical_path, findings (run with --mode "
            "trace for timelines, breakdowns and findings).") in flat
    assert "Operators (kernel time; p50, p99 from histograms)" in out
    mm = next(line for line in out.splitlines() if line.startswith("net/layer1/dense/MatMul-op1"))
    assert mm.split() == ["net/layer1/dense/MatMul-op1", "4", "1.1us", "256ns", "400ns",
                          "71.0%", "10,000"]
    for title in ("Operator types", "Scopes", "Collectives", "Memory: peak 4,000 bytes",
                  "Memory per operator", "(outside ops)"):
        assert title in out
    # nothing computed from the empty kernel table
    for title in ("Devices", "Step breakdown", "Findings", "Host-bound", "Critical path",
                  "Live at the peak", "Communication ops"):
        assert title not in out


def test_report_command_of_a_summary(summary_dir, capsys):
    code, out, err = run(["report", str(summary_dir), "-s", "ops,devices"], capsys)
    assert code == 0 and err == ""
    assert "not recorded: devices (run with --mode trace" in " ".join(out.split())
    assert "MatMul-op1" in out and max(map(len, out.splitlines())) <= 80
    code, out, _ = run(["report", str(summary_dir), "-f", "json", "-s", "memory,steps"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["not_recorded"] == ["steps"]
    assert [p["peak"] for p in doc["memory"]["peaks"]] == [4000, 2148]


def test_trace_report_shows_no_summary_line(ref):
    assert "Summary mode" not in _text(ref.report(sections=["ops", "memory"]))


# flame

def test_flame_of_a_summary_draws_the_operator_totals(summ):
    root = summ.flame()
    assert root.value == 1550
    mm = _find(root, flame.WHOLE_RUN, "net", "layer1", "dense", "MatMul", "MatMul-op1")
    assert mm.value == 1100 and mm.cls == flame.COMPUTE
    assert summ.flame(rank=1).value == 300
    assert summ.flame(metric="comm").value == 100
    assert summ.flame(metric="memory").value == 1000 + 3500 + 256 + 2048 + 100
    assert summ.flame(focus="layer1").value == 1450


@pytest.mark.parametrize("kw, what", [({"metric": "launch"}, "--metric launch"),
                                      ({"step": 0}, "--step"), ({"per_step": True}, "--per-step")])
def test_flame_of_a_summary_refuses_what_needs_times(summ, kw, what):
    with pytest.raises(MsprofError, match=f"{what} needs a trace-mode profile"):
        summ.flame(**kw)


def test_flame_command_of_a_summary(summary_dir, capsys):
    code, out, err = run(["flame", str(summary_dir), "--width", "80"], capsys)
    assert code == 0 and err == ""
    assert "whole run" in out and "MatMul-op1" in out
    code, out, err = run(["flame", str(summary_dir), "--metric", "launch"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("msprof: error: --metric launch needs a trace-mode profile")


# diff

@pytest.fixture
def dp_dirs(tmp_path):
    a = profiles.data_parallel(tmp_path / "a")
    b = profiles.data_parallel(tmp_path / "b", slow_rank=2)
    return a, b, profiles.as_summary(a, tmp_path / "sa"), profiles.as_summary(b, tmp_path / "sb")


def test_diff_of_summaries_compares_steps_and_operators_only(dp_dirs):
    a, b, sa, sb = (msprof.load(d) for d in dp_dirs)
    d = diff(sa, sb)
    assert d["not_recorded"] == ["devices", "memory", "findings"] and "devices" not in d
    assert (d["step"]["a_ns"], d["step"]["b_ns"]) == (4000, 6000)
    assert [f["kind"] for f in d["findings"]] == ["regression"] and d["vanished"] == []
    traced = diff(a, b)
    pd.testing.assert_frame_equal(d["ops"], traced["ops"])
    assert d["step"] == traced["step"]
    mixed = diff(a, sb)                  # one side a summary is enough
    assert mixed["not_recorded"] == ["devices", "memory", "findings"] and mixed["step"]["b_ns"] == 6000
    assert (mixed["a"]["mode"], mixed["b"]["mode"]) == ("trace", "summary")


def test_diff_command_of_summaries(dp_dirs, capsys):
    _, _, sa, sb = dp_dirs
    code, out, err = run(["diff", str(sa), str(sb)], capsys)
    assert code == 0 and err == ""
    assert max(map(len, out.splitlines())) <= 80
    flat = " ".join(out.split())
    assert "4us -> 6us (+2us, +50.0%)" in flat and "regression" in flat
    assert ("A and B are summary-mode profiles: not compared: devices, memory, findings "
            "(record both with --mode trace for those).") in flat
    assert "Devices (mean step" not in out and "none appeared" not in out
    code, out, _ = run(["diff", str(sa), str(sb), "-f", "json"], capsys)
    assert json.loads(out)["not_recorded"] == ["devices", "memory", "findings"]


def test_diff_note_names_the_summary_side(dp_dirs):
    a, _, _, sb = (msprof.load(d) for d in dp_dirs)
    console = Console(width=80, file=StringIO(), color_system=None)
    diff_reporter.render(diff(a, sb), console)
    assert "B is a summary-mode profile: not compared" in " ".join(console.file.getvalue().split())


# export

def test_parquet_and_csv_carry_the_summary_tables(summ, tmp_path):
    files = tables.export(summ, tmp_path / "pq", "parquet")
    assert sorted(p.name for p in files) == sorted(f"{t}.parquet" for t in COLUMNS)
    k = pq.read_table(tmp_path / "pq" / "kernel_summary.parquet")
    hist_type = k.schema.field("hist").type
    assert pa.types.is_list(hist_type) and hist_type.value_type == pa.int64()
    pd.testing.assert_frame_equal(k.to_pandas().drop(columns="hist"),
                                  summ.kernel_summary.drop(columns="hist"), check_dtype=False)
    assert [list(h) for h in k.column("hist").to_pylist()] == \
        [list(h) for h in summ.kernel_summary["hist"]]
    m = pq.read_table(tmp_path / "pq" / "memory_summary.parquet").to_pandas()
    pd.testing.assert_frame_equal(m, summ.memory_summary, check_dtype=False)
    tables.export(summ, tmp_path / "csv", "csv")
    c = pd.read_csv(tmp_path / "csv" / "kernel_summary.csv")
    assert list(c.columns) == list(COLUMNS["kernel_summary"])
    hist = [json.loads(h) for h in c["hist"]]
    assert all(len(h) == HIST_BUCKETS for h in hist)
    assert hist == [list(h) for h in summ.kernel_summary["hist"]]
    assert pd.read_csv(tmp_path / "csv" / "memory_summary.csv")["alloc_bytes"].sum() == 6904


def test_csv_of_a_trace_profile_has_empty_summary_tables(ref, tmp_path):
    tables.export(ref, tmp_path / "csv", "csv")
    text = (tmp_path / "csv" / "kernel_summary.csv").read_text()
    assert text.splitlines() == ['"rank","pid","op_id","stream","calls","total_ns","min_ns",'
                                 '"max_ns","hist"']


def test_chrome_of_a_summary_holds_steps_and_collectives(summ, tmp_path):
    doc = json.loads(chrome.export(summ, tmp_path / "t.json").read_text())
    cats = {e.get("cat") for e in doc["traceEvents"] if e["ph"] == "X"}
    assert cats == {"step", "communication"}
    assert doc["otherData"]["mode"] == "summary"


def test_folded_of_a_summary_sums_to_the_kernel_time(summ, tmp_path):
    lines = folded.export(summ, tmp_path / "f.folded").read_text().splitlines()
    assert sum(int(x.rsplit(" ", 1)[1]) for x in lines) == 1550
    assert "rank 0;whole run;net;layer1;dense;MatMul;MatMul-op1 900" in lines


def test_export_command_of_a_summary(summary_dir, tmp_path, capsys):
    code, _, err = run(["export", str(summary_dir), "--to", "chrome", "-o",
                        str(tmp_path / "t.json")], capsys)
    assert code == 0 and err.startswith(f"wrote {tmp_path / 't.json'}")
    assert "note: a summary-mode profile has no kernel or memory timeline" in " ".join(err.split())
    code, out, err = run(["export", str(summary_dir), "--to", "hta", "-o",
                          str(tmp_path / "hta")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("msprof: error: an HTA export needs a trace-mode profile")
    assert not (tmp_path / "hta").exists()
    code, _, err = run(["export", str(summary_dir), "--to", "folded", "-m", "launch", "-o",
                        str(tmp_path / "f.folded")], capsys)
    assert code == 2 and "--metric launch needs a trace-mode profile" in err
    code, _, err = run(["export", str(summary_dir), "--to", "parquet", "-o",
                        str(tmp_path / "pq")], capsys)
    assert code == 0 and "note:" not in err
    assert pq.read_table(tmp_path / "pq" / "kernel_summary.parquet").num_rows == 5
