"""The report's first screen, as data: the typical step, where it went on
each rank, the throughput, and the findings that matter most with what
fixing each would give back per step.

The step is the typical (median) step of each rank, the step the findings
size their gains against (:func:`msprof.analysis.findings.typical_steps`),
so a finding's share of the step reads against the step shown beside it.
"""
from __future__ import annotations

import pandas as pd

from msprof.analysis.throughput import throughput

# The parts of a step that add up to it (docs/REPORT.md), in the order the
# report shows them.
PARTS = [("compute", "compute_ns"), ("exp.comm", "exposed_comm_ns"), ("bubble", "bubble_ns"),
         ("host gaps", "host_gap_ns"), ("idle", "idle_ns")]

TOP_FINDINGS = 3     # what the first screen has room for; the findings section lists them all


def rank_parts(typical: pd.DataFrame) -> pd.DataFrame:
    """Per rank: ``rank``, ``steps``, ``step_ns`` and each of :data:`PARTS`
    with its ``<part>_frac`` of the parts' sum (medians of different parts
    need not add up to the median step exactly)."""
    cols = [c for _, c in PARTS if c in typical]
    out = typical[["rank", "steps", "step_ns"] + cols].copy()
    whole = out[cols].sum(axis=1).where(lambda s: s > 0)
    for c in cols:
        out[c.replace("_ns", "_frac")] = (out[c] / whole).fillna(0.0)
    return out.sort_values("rank").reset_index(drop=True)


def top_findings(findings: list[dict], step_ns: float | None, n: int = TOP_FINDINGS) -> list[dict]:
    """The first ``n`` findings (they come ranked), each with ``share``: its
    gain over the typical step, or over the iteration for a finding about
    time between steps (``iteration_ns`` in its evidence: that time is no
    part of the step, 12 ms of a 5 ms step would read 241 %); None when it
    has no gain or nothing to compare with."""
    def share(f):
        whole = f.get("evidence", {}).get("iteration_ns") or step_ns
        return f["impact_ns"] / whole if f.get("impact_ns") and whole else None
    return [dict(f, share=share(f)) for f in findings[:n]]


def overview(steps: pd.DataFrame, typical: pd.DataFrame | None,
             findings: list[dict] | None) -> dict:
    """``step_ns`` (the ranks' typical step, averaged), ``steps``,
    ``ranks`` (:func:`rank_parts`; only ``rank``, ``steps``, ``step_ns``
    when ``typical`` is None: a summary-mode profile has no breakdown),
    ``throughput`` (:func:`msprof.analysis.throughput.throughput`) and
    ``findings`` (:func:`top_findings`; None when not recorded)."""
    tp = throughput(steps)
    if typical is None:
        g = steps.groupby("rank")["dur_ns"]
        ranks = pd.DataFrame({"steps": g.size(), "step_ns": g.median()}).reset_index()
    else:
        ranks = rank_parts(typical)
    return {"step_ns": tp["step_ns"], "steps": tp["steps"], "ranks": ranks, "throughput": tp,
            "findings": None if findings is None else top_findings(findings, tp["step_ns"])}
