"""``msprof report --html``: what the page is built from and its bounds,
without a browser (tests/browser/test_html_browser.py opens the pages)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from conftest import run_msprof
from profiles import data_parallel, dp_slow, summary_dir  # noqa: F401  (fixtures)

import msprof
from msprof.analysis import sampling
from msprof.cli.reporters import html as html_reporter
from msprof.errors import MsprofError


def _steps(n, ranks=(0, 1), slow=None):
    rows = [{"rank": r, "step": s, "start_ns": s * 1000, "step_ns": 500 + (400 if s == slow else 0),
             "compute_ns": 100} for r in ranks for s in range(n)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n, per_bar", [(sampling.MAX_STEP_BARS, 1),
                                        (sampling.MAX_STEP_BARS + 1, 2)])
def test_step_sample_bins_only_beyond_the_bar_budget(n, per_bar):
    out = sampling.step_sample(_steps(n, slow=n - 1))
    assert out.attrs["per_bar"] == per_bar
    assert out.groupby("rank").size().max() <= sampling.MAX_STEP_BARS
    assert len(out) == 2 * (n if per_bar == 1 else -(-n // 2))
    # the slow step is shown, never averaged away
    assert (out["step"] == n - 1).sum() == 2
    assert out.loc[out["step"] == n - 1, "step_ns"].eq(900).all()


def test_default_window_is_the_slowest_step_and_its_neighbours():
    assert sampling.default_window(_steps(10, slow=4).rename(columns={})) == (3, 5)
    assert sampling.default_window(_steps(10, slow=0)) == (0, 2)    # at the ends: shifted in
    assert sampling.default_window(_steps(10, slow=9)) == (7, 9)
    assert sampling.default_window(_steps(2, slow=1)) == (0, 1)
    with pytest.raises(MsprofError, match="no steps recorded"):
        sampling.default_window(_steps(0))


def _slices(prof, first, last, **kw):
    return sampling.slices(prof.kernels, prof.ops, prof.comms, prof.steps, first, last,
                           cpu_waits=prof.cpu_waits, blocked=prof.blocked, **kw)


def test_slices_of_a_window(dp_slow):
    sl = _slices(dp_slow, 1, 1)
    # step 1 of 4 ranks: 4 kernels each (3 compute, 1 allreduce) and one collective
    assert len(sl) == 4 * 5 and sl.attrs["dropped"] == 0 and sl.attrs["window"] == (1, 1)
    assert set(sl["lane"]) == {"stream 0", "stream 1", "collectives"}
    assert (sl["step"] == 1).all()
    mm = sl[sl["name"] == "MatMul-op1"]
    assert set(mm["scope"]) == {"net/dense/MatMul-op1"} and set(mm["kind"]) == {"compute"}
    assert set(sl.loc[sl["lane"] == "stream 1", "kind"]) == {"communication"}
    assert set(_slices(dp_slow, 0, 2, rank=3)["rank"]) == {3}
    with pytest.raises(MsprofError, match="no steps 7-9 in this profile"):
        _slices(dp_slow, 7, 9)


@pytest.mark.parametrize("cap", [60, 59])
def test_slices_keep_the_longest_beyond_the_cap(dp_slow, cap):
    whole = _slices(dp_slow, 0, 2)
    assert len(whole) == 60
    sl = _slices(dp_slow, 0, 2, max_slices=cap)
    assert len(sl) == min(cap, 60)
    assert sl.attrs["dropped"] == 60 - len(sl)
    if sl.attrs["dropped"]:
        shortest = int(whole["dur_ns"].min())
        assert sl.attrs["dropped_ns"] == shortest
        assert sl["dur_ns"].min() >= shortest


def test_page_holds_every_section_offline(dp_slow, tmp_path):
    data = html_reporter.gather(dp_slow)
    page = html_reporter.render(data)
    for sid in html_reporter.SECTION_IDS:
        assert f'<section id="{sid}">' in page
    # self-contained: no script or stylesheet fetched from anywhere
    assert not re.search(r"<script[^>]+src=", page) and "<link" not in page
    assert page.count("<script type=\"text/javascript\">") == 1     # plotly.js, once
    assert page.count("Plotly.newPlot(") >= 6
    # the lead: the slow rank's finding with its impact; the per-rank flame views
    assert "slow_rank" in page and "impact 2 us/step" in page
    assert [v.label for v in data.flames][:2] == ["device time", "device time, per rank"]
    per_rank = data.flames[1].root
    assert [c.name for c in per_rank.children] == ["rank 0", "rank 1", "rank 2", "rank 3"]
    assert per_rank.value == data.flames[0].root.value == 84_000


def test_flame_views_are_bounded():
    from msprof.analysis.flame import Frame
    from msprof.cli.reporters.html import data as data_mod
    root = Frame("all", 0, children=[Frame(f"op{i}", 1) for i in range(20_000)])
    root.value = 20_000
    kept = data_mod._bounded(root, root.value)
    assert sum(1 for _ in kept.walk()) <= data_mod.MAX_FLAME_FRAMES
    small = Frame("all", 10, children=[Frame(f"op{i}", 1) for i in range(10)])
    assert sum(1 for _ in data_mod._bounded(small, 10).walk()) == 11


def test_cli_writes_the_file(tmp_path):
    prof = data_parallel(tmp_path / "dp", slow_rank=1)
    out = tmp_path / "r.html"
    r = run_msprof("report", prof, "--html", out, "--window", "1:2")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1_000_000 and r.stdout == ""
    assert "steps 1-2 (choose with --window A:B)" in out.read_text()
    # a directory: <profile name>.html inside it
    r = run_msprof("report", prof, "--html", tmp_path, "--rank", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "dp.html").is_file()


@pytest.mark.parametrize("args, message", [
    (["--window", "3:1"], "the first step is after the last"),
    (["--window", "a:b"], "--window takes steps as A:B"),
    (["--window", "7:9"], "no steps 7-9 in this profile"),
    (["--rank", "9"], "no rank 9 in this profile"),
])
def test_cli_mistakes_are_one_line(tmp_path, args, message):
    prof = data_parallel(tmp_path / "dp")
    r = run_msprof("report", prof, "--html", tmp_path / "x.html", *args)
    assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.html").exists()


def test_options_that_need_html_or_cannot_go_with_it_are_one_line(tmp_path):
    prof = data_parallel(tmp_path / "dp")
    r = run_msprof("report", prof, "--window", "1:2")
    assert r.returncode != 0 and "add --html FILE" in r.stderr
    r = run_msprof("report", prof, "--html", tmp_path / "x.html", "--format", "json")
    assert r.returncode != 0 and "leave out --format json" in r.stderr
    r = run_msprof("report", prof, "--html", tmp_path / "nowhere" / "x.html")
    assert r.returncode != 0 and "no directory" in r.stderr


def test_summary_mode_page_says_what_it_lacks(summary_dir, tmp_path):
    out = tmp_path / "s.html"
    r = run_msprof("report", summary_dir, "--html", out)
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "Summary mode: per-operator totals only" in page
    assert page.count("Not recorded in summary mode") == 3     # steps, timeline, findings
    assert 'id="flame-plot"' in page and "No data exchanged between ranks" in page
    assert np.all([f'<section id="{s}">' in page for s in html_reporter.SECTION_IDS])
