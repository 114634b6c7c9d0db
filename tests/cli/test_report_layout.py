"""The report's layout at 80 columns: a first screen that leads (the step,
where it went per rank, the top findings with their gain), no empty
sections, and every column it prints defined in docs/REPORT.md."""
from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

import msprof
import profiles
from msprof.analysis.diff import diff
from msprof.analysis.report import SECTIONS
from msprof.cli.reporters import diff as diff_reporter
from msprof.cli.reporters import table
from msprof.cli.reporters.named_rows import NamedRows

REPORT_MD = Path(__file__).resolve().parents[2] / "docs" / "REPORT.md"
FIRST_SCREEN = 40       # lines: a terminal's height, and then some


def render(doc, steps=False) -> str:
    console = Console(width=80, file=StringIO(), color_system=None)
    table.render(doc, console, steps=steps)
    return console.file.getvalue()


def defined_terms() -> set[str]:
    """Every `term` in the first cell of a table row of docs/REPORT.md,
    and every **term** defined in its text."""
    text = REPORT_MD.read_text(encoding="utf-8")
    terms = set()
    for line in text.splitlines():
        if line.startswith("| "):
            terms |= set(re.findall(r"`([^`]+)`", line.split(" | ")[0]))
    terms |= {t.lower() for t in re.findall(r"\*\*([^*]+)\*\*", text)}
    return terms


def headers(renderable) -> list[str]:
    """The column headers a renderable of the table reporters prints."""
    if isinstance(renderable, Table):
        return [str(c.header) for c in renderable.columns]
    if isinstance(renderable, NamedRows):
        return [renderable.name_header] + renderable.columns
    return []


@pytest.fixture
def many(tmp_path):
    """Profiles that between them fill every section: data parallel with a
    slow rank (eBPF-style CPU waits: the CPU columns), a pipeline, tiny
    operators on one rank, a summary, the reference."""
    dp = profiles.contended(tmp_path / "dp")
    profiles.write_table(dp, "cpu_time", [          # where each rank computed
        {"rank": r, "pid": 100 + r, "tid": 100, "cpu": r % 2, "ns": 10**6} for r in range(4)])
    return [msprof.load(d) for d in (
        dp, profiles.pipeline(tmp_path / "pp"),
        profiles.tiny(tmp_path / "t"), profiles.summary_reference(tmp_path / "s"),
        profiles.reference(tmp_path / "r"))]


def test_every_column_the_report_prints_is_defined_in_report_md(many, tmp_path):
    defined = defined_terms()
    printed = set()
    for p in many:
        doc = p.report()
        for name in SECTIONS:
            if name in doc:
                for r in table.section(name, doc[name], summary=p.summary_mode):
                    printed |= set(headers(r))
    a = msprof.load(profiles.data_parallel(tmp_path / "a"))
    d = diff(a, many[0])
    for r in (diff_reporter.ops_table(d["ops"]), diff_reporter.devices_table(d["devices"]),
              diff_reporter.memory_table(d["memory"]), table.findings_table(d["findings"])):
        printed |= set(headers(r))
    printed.discard("")
    assert {"CPU wait", "ran on CPU", "makes wait", "exp.comm", "host gaps"} <= printed
    assert sorted(printed - defined) == []
    # and the terms the tables' titles and verdicts lean on
    for term in ("step", "typical step", "exposed communication", "pipeline bubble", "throughput",
                 "makes wait", "gain", "leak", "launch cost", "tiny kernel"):
        assert term in defined, term


def test_first_screen_leads_with_the_step_the_ranks_and_the_top_findings(tmp_path):
    p = msprof.load(profiles.data_parallel(tmp_path / "dp", slow_rank=2))
    lines = render(p.report()).splitlines()
    assert max(map(len, lines)) <= 80
    screen = lines[:FIRST_SCREEN]
    # every rank's step lasts as long as the slowest rank's (the others wait)
    assert screen[8].startswith("Step 6us (median of 3 steps, 4 ranks)")
    bars = [line.split() for line in screen if re.match(r"\s+\d\s+\S+\s+[█▓▒░·]{24}", line)]
    assert [b[0] for b in bars] == ["0", "1", "2", "3"]
    assert all(b[1] == "6us" for b in bars)
    assert bars[2][3:5] == ["compute", "100%"]          # the slow rank computes throughout
    assert bars[0][3:5] == ["compute", "67%,"] and "exp.comm" in bars[0]
    top = screen.index(next(line for line in screen if line.startswith("Top findings")))
    first = screen[top + 3].split()
    # rank 2 computes 2000 ns more per step: the gain, and its share of the step
    assert first[:5] == ["1", "slow_rank", "2us", "33%", "rank"]
    assert "Operators" in "\n".join(lines[top:])      # the details follow


def test_bar_has_one_glyph_per_share_of_the_step():
    row = type("Row", (), {"compute_frac": 0.5, "exposed_comm_frac": 0.25, "bubble_frac": 0.0,
                           "host_gap_frac": 0.125, "idle_frac": 0.125})()
    assert table.step_bar(row, width=8) == "████▓▓░·"
    row.compute_frac, row.exposed_comm_frac = 0.74, 0.01     # rounded: still 8 wide
    assert len(table.step_bar(row, width=8)) == 8


def test_one_rank_leaves_the_empty_sections_out(tmp_path):
    p = msprof.load(profiles.clean(tmp_path / "one", ranks=(0,)))
    out = render(p.report())
    for title in ("Communication", "Collectives", "Imbalance", "Load imbalance", "Pipeline",
                  "Stages", "Critical path", "Step breakdown"):
        assert title not in out, title
    assert " ".join(out.split()).endswith(
        "Nothing to show: communication (no collectives), imbalance (one rank), pipeline "
        "(no stages), memory (no pool events), critical path (one rank).")
    assert "Scopes" in out and "(all)" in out       # the root scope has a name


def test_a_section_asked_for_alone_and_empty_is_named(tmp_path):
    p = msprof.load(profiles.clean(tmp_path / "one", ranks=(0,)))
    out = render(p.report(sections=["comm", "pipeline"]))
    assert "Nothing to show: communication (no collectives), pipeline (no stages)." in out


@pytest.mark.parametrize("message,clause", [
    ("rank 1 computes 2x; it waits (a; b) long", "rank 1 computes 2x"),
    ("waited 4 ms (52% of the step; runnable); behind pid 7", "waited 4 ms (52% of the step; runnable)"),
    ("no clause at all", "no clause at all"),
])
def test_the_first_screen_gives_a_finding_up_to_its_evidence(message, clause):
    assert table.first_clause(message) == clause
