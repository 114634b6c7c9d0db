"""The report and the diff of real runs (eBPF), as a person reads them at
80 columns.

report  the LeNet demo on one rank: the first screen holds the step (with
        the samples each step trained on, recorded by the runtime), where
        it went, and the top findings; no empty section (one rank: no
        communication, imbalance, pipeline or critical path); every column
        it prints is defined in docs/REPORT.md; and it is shorter than the
        146 lines it took before.
diff    a small MLP (width 64) training at batch 32 (24 steps) and at batch
        128 (6 steps: the same samples), one rank on core 0, kernels
        modelled on a device (MSRT_DEVICE_GFLOPS=20: a kernel lasts at
        least its FLOPs' time, so the compute per sample is the same at
        both batch sizes, while the host's cost per step, ~0.25 ms, is
        shared by 4x the samples).  Measured: steps 430 us -> 728 us
        (+69 %), throughput 2.4x.  Each step at 128 lasts longer, each
        sample less: the verdict is an improvement, by throughput, and the
        diff says it compared per sample because the batch and the step
        count differ.  (LeNet on the bare cores is no test of it: a step at
        batch 128 took 1.2x to 2.5x the time per sample of batch 32 from one
        pair of runs to the next on this VM, a verdict either way.)
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.table import Table

import msprof
from conftest import REPO, run_msprof
from msprof.analysis.report import SECTIONS
from msprof.cli.reporters import table
from msprof.cli.reporters.named_rows import NamedRows

EXAMPLE = REPO / "examples" / "lenet_digits.py"
SCRIPT = Path(__file__).resolve().parent / "scripts" / "injected.py"
FIRST_SCREEN = 40
LINES_BEFORE = 146      # the one-rank LeNet report before it led with an overview


@pytest.fixture(scope="module")
def lenet(tmp_path_factory, ebpf_ready):
    out = tmp_path_factory.mktemp("lenet") / "profile"
    r = run_msprof("run", "-o", out, "--backend", "ebpf", EXAMPLE, "--epochs", 1, "--steps", 24)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def mlp(factory, batch: int, steps: int) -> Path:
    out = factory.mktemp(f"batch{batch}") / "profile"
    r = run_msprof("run", "-o", out, "--backend", "ebpf", SCRIPT, "dp", "--width", 64,
                   "--batch", batch, "--steps", steps,
                   env={"MSRT_DEVICE_GFLOPS": "20", "MSRT_CPU_BIND": "0"})
    assert r.returncode == 0, r.stderr[-3000:]
    return out


RUNS = 2


def typical_step(path: Path) -> float:
    return float(msprof.load(path).steps["dur_ns"].median())


@pytest.fixture(scope="module")
def batches(tmp_path_factory, ebpf_ready):
    """Of two runs at each batch size, run alternately, the faster: the
    other engineers' jobs on this 2-core VM only ever slow a run, and once
    stretched a batch-128 run's steps 2.7x for its whole second (load
    average 9)."""
    runs = [(mlp(tmp_path_factory, 32, 24), mlp(tmp_path_factory, 128, 6)) for _ in range(RUNS)]
    return tuple(min((r[i] for r in runs), key=typical_step) for i in (0, 1))


def defined_terms() -> set[str]:
    text = (REPO / "docs" / "REPORT.md").read_text(encoding="utf-8")
    terms = set()
    for line in text.splitlines():
        if line.startswith("| "):
            terms |= set(re.findall(r"`([^`]+)`", line.split(" | ")[0]))
    return terms


@pytest.mark.ebpf
def test_one_rank_report_leads_and_leaves_empty_sections_out(lenet):
    r = run_msprof("report", lenet, env={"COLUMNS": "80"})
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert len(lines) <= 0.85 * LINES_BEFORE, len(lines)
    screen = "\n".join(lines[:FIRST_SCREEN])
    step = re.search(r"^Step (\S+) \(median of 24 steps, 1 rank\); ([\d,]+) samples/s, 32 per step",
                     screen, re.M)
    assert step, screen
    assert re.search(r"^\s+0\s+\S+\s+[█▓▒░·]{24}  compute \d+%", screen, re.M), screen
    assert "Top findings" in screen
    out = r.stdout
    for title in ("Collectives", "Communication matrix", "Load imbalance", "Stages (per step)",
                  "Critical path of step", "Step breakdown"):
        assert title not in out, title
    assert ("Nothing to show: communication (no collectives), imbalance (one rank), pipeline "
            "(no stages), critical path (one rank).") in " ".join(out.split())
    # the operators by scope path, the root scope named
    assert re.search(r"^net/conv\d/Conv2D-op\d+ ", out, re.M) and "\n(all) " in out


@pytest.mark.ebpf
def test_every_column_of_a_real_report_is_defined(lenet):
    p = msprof.load(lenet)
    doc = p.report()
    printed = set()
    for name in SECTIONS:
        for rend in table.section(name, doc[name]) if name in doc else []:
            if isinstance(rend, Table):
                printed |= {str(c.header) for c in rend.columns}
            elif isinstance(rend, NamedRows):
                printed |= {rend.name_header, *rend.columns}
    printed.discard("")
    assert "CPU wait" in printed                  # eBPF's columns too
    assert sorted(printed - defined_terms()) == []


@pytest.mark.ebpf
def test_a_larger_batch_is_judged_by_its_throughput(batches):
    a, b = batches
    r = run_msprof("diff", a, b, "--format", "json")
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    tp = doc["throughput"]
    assert (tp["a"]["samples_per_step"], tp["b"]["samples_per_step"]) == (32, 128)
    assert tp["basis"] == "sample" and tp["why"] == "batch 32 -> 128; 24 -> 6 steps: compared per sample"
    assert doc["step"]["pct"] > 0.1, doc["step"]            # each step is longer ...
    gain = tp["b"]["samples_per_s"] / tp["a"]["samples_per_s"]
    assert gain > 1.3, tp                                   # ... each sample shorter
    verdict = doc["findings"][0]
    assert verdict["kind"] == "improvement" and "samples/s" in verdict["message"], verdict
    assert not [f for f in doc["findings"] if f["kind"] == "regression"]
    # operators matched one for one (same graph), compared per sample
    assert {o["change"] for o in doc["ops"]} == {""}
    r = run_msprof("diff", a, b, env={"COLUMNS": "80"})
    flat = " ".join(r.stdout.split())
    assert "Batch 32 -> 128; 24 -> 6 steps: compared per sample." in flat
    assert "Operators (time per sample" in flat
