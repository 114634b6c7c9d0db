"""The table reporter rendered at a fixed width, as text."""
from __future__ import annotations

from io import StringIO

import pytest
from rich.console import Console

import profiles

import msprof
from msprof.cli.reporters import named_rows, table
from profiles import clean_profile, ref, ref_dir  # noqa: F401  (fixtures)


def _text(renderable, width=80) -> str:
    console = Console(width=width, file=StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_ops_table_at_80_columns(ref):
    out = _text(table.ops_table(ref.op_stats()))
    lines = out.splitlines()
    assert lines[0].rstrip() == "Operators (kernel time)"
    # each operator by its scope path; no self time (a kernel holds no other)
    assert lines[1].split() == ["operator", "calls", "total", "p50", "p99", "share", "GFLOP/s"]
    assert lines[3].split() == ["net/layer1/dense/MatMul-op1", "4", "1.1us", "250ns",
                                "397ns", "71.0%", "10,000"]
    assert lines[4].split() == ["net/layer1/ReLU-op2", "4", "350ns", "100ns", "100ns", "22.6%"]
    assert max(map(len, lines)) <= 80


def test_devices_table(ref):
    lines = _text(table.devices_table(ref.device_breakdown())).splitlines()
    assert lines[1].split() == ["rank", "steps", "step", "kernel", "host", "gaps", "idle",
                                "mem", "peak", "CPU", "wait"]
    assert lines[3].split() == ["0", "2", "1us", "550ns", "55%", "75ns", "8%", "375ns", "38%",
                                "3.91KiB", "0ns"]
    assert lines[4].split() == ["1", "2", "1us", "150ns", "15%", "350ns", "35%", "500ns", "50%",
                                "2KiB", "0ns"]


def test_full_report_fits_80_columns_and_has_every_part(ref):
    console = Console(width=80, file=StringIO(), color_system=None)
    table.render(ref.report(), console, steps=True)
    out = console.file.getvalue()
    assert max(map(len, out.splitlines())) <= 80
    for title in ("command", "Operators", "Devices", "Steps", "Findings"):
        assert title in out
    assert "WARNING" not in out


def test_long_scope_paths_lose_their_head_not_the_operator(ref):
    stats = ref.op_stats()
    stats.loc[0, "scope"] = "Gradients/net/encoder/layer11/attention/QKVProjection-MatMul-op1234"
    lines = _text(table.ops_table(stats)).splitlines()
    assert len(lines) == 6 and max(map(len, lines)) <= 80
    name = lines[3].split()[0]
    assert name.startswith("…") and name.endswith("QKVProjection-MatMul-op1234")
    assert lines[3].split()[1:] == ["4", "1.1us", "250ns", "397ns", "71.0%", "10,000"]
    wide = _text(table.ops_table(stats), width=120).splitlines()
    assert wide[3].split()[0] == "Gradients/net/encoder/layer11/attention/QKVProjection-MatMul-op1234"


@pytest.mark.parametrize("path,width,cut", [
    ("net/conv1/Conv2D-op1", 40, "net/conv1/Conv2D-op1"),
    ("Gradients/net/conv1/Conv2DBackpropFilter-op35", 32, "…conv1/Conv2DBackpropFilter-op35"),
    ("Gradients/net/conv1/Conv2DBackpropFilter-op35", 30, "…Conv2DBackpropFilter-op35"),
    ("Gradients/net/conv1/Conv2DBackpropFilter-op35", 17, "Conv2DBackp…-op35"),
])
def test_cut_path_keeps_the_operator_and_the_cells_nearest_it(path, width, cut):
    assert named_rows.cut_path(path, width) == cut
    assert len(cut) <= width


@pytest.mark.parametrize("name,width,cut", [
    ("Conv2DBackpropFilter-op31", 40, "Conv2DBackpropFilter-op31"),
    ("Conv2DBackpropFilter-op31", 17, "Conv2DBackp…-op31"),
    ("Conv2DBackpropFilter-op31", 10, "Conv…-op31"),
    ("a/very/long/scope/without_any_short_tail", 12, "a/very…_tail"),
    ("abcdefghijklmnop", 9, "abcd…mnop"),
    ("abcdef", 1, "…"),
])
def test_cut_middle_keeps_the_distinguishing_tail(name, width, cut):
    assert named_rows.cut_middle(name, width) == cut
    assert len(cut) <= width


def test_no_findings_says_so():
    assert _text(table.findings_table([])).strip() == "Findings: none; nothing stands out."


def test_header_shows_lost_events(tmp_path):
    p = msprof.load(profiles.write_profile(
        tmp_path / "p", profiles.base_meta(lost_events=1234, lost_by_cause={"ringbuf_full": 1234},
                                            exit_status=137)))
    out = _text(table.header(p.meta))
    assert "1,234 LOST (ringbuf_full 1,234)" in out
    assert "exit status  137" in out
