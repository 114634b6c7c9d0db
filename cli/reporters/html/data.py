"""Everything the HTML report shows, gathered from the profile's analyses
(the same ones ``msprof report`` prints) and bounded in size by
:mod:`msprof.analysis.sampling`; no drawing here."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pandas as pd

from msprof.analysis import flame as flame_analysis
from msprof.analysis import sampling
from msprof.cli.reporters.html.flame import FlameView

# The flamegraph folds frames below this share of the total into "+N more"
# per parent, so a profile of many thousand operators still gives a tree of
# a few thousand frames (the icicle redraws all of them on every zoom).
FLAME_MIN_SHARE = 0.001
MAX_FLAME_FRAMES = 4000


@dataclass
class ReportData:
    """The report's data: ``doc`` is :func:`msprof.analysis.report.build`'s
    document (meta, devices, comm, memory, findings), the rest what the
    charts need beyond it."""
    doc: dict
    ranks: list[int]
    steps: Optional[pd.DataFrame] = None       # sampled: attrs["per_bar"]
    slices: Optional[pd.DataFrame] = None      # the timeline's window: attrs window/dropped
    memory_timeline: Optional[pd.DataFrame] = None
    flames: list[FlameView] = field(default_factory=list)
    not_recorded: list[str] = field(default_factory=list)


def _count(root) -> int:
    return sum(1 for _ in root.walk())


def _bounded(root, total: int):
    share = FLAME_MIN_SHARE
    out = flame_analysis.fold_thin(root, share, total)
    while _count(out) > MAX_FLAME_FRAMES and share < 0.1:
        share *= 3
        out = flame_analysis.fold_thin(root, share, total)
    return out


def flames(profile, rank: Optional[int]) -> list[FlameView]:
    """A view per metric with data: all ranks merged (or ``rank``), and,
    for several ranks, the ranks side by side under one root."""
    views = []
    metrics = ["device", "comm", "memory"] + ([] if profile.summary_mode else ["launch"])
    for metric in metrics:
        unit = "B" if metric in flame_analysis.BYTE_METRICS else "ns"
        label = flame_analysis.METRICS[metric]
        # one pass over the events per metric: the ranks' rows kept apart
        # build both the merged tree and the one per rank
        rows = flame_analysis.stacks(profile, metric, rank=rank, by_rank=True)
        merged = flame_analysis.tree(rows, f"rank {rank}" if rank is not None else "all ranks")
        if merged.value <= 0:
            continue
        views.append(FlameView(metric, label, _bounded(merged, merged.value), unit))
        if rank is None and len(profile.ranks) > 1:
            per = [flame_analysis.tree(rows[rows["rank"] == r], f"rank {r}")
                   for r in sorted(rows["rank"].unique())]
            root = flame_analysis.Frame("ranks side by side", sum(t.value for t in per),
                                        merged.cls, per)
            views.append(FlameView(metric, f"{label}, per rank", _bounded(root, root.value), unit))
    return views


def gather(profile, rank: Optional[int] = None,
           window: Optional[tuple[int, int]] = None) -> ReportData:
    """The report's data for all ranks or ``rank``; ``window`` (first, last
    step) chooses the timeline's steps (default: around the slowest)."""
    profile.check_rank(rank)
    doc = profile.report(rank=rank, top=15,
                         sections=["ops", "devices", "steps", "comm", "memory", "findings"])
    data = ReportData(doc=doc, ranks=[r for r in profile.ranks if rank is None or r == rank],
                      flames=flames(profile, rank), not_recorded=list(doc.get("not_recorded", [])))
    if profile.summary_mode:
        return data
    steps = doc["steps"]
    data.steps = sampling.step_sample(steps)
    if len(steps):
        first, last = window or sampling.default_window(steps)
        data.slices = sampling.slices(profile.kernels, profile.ops, profile.comms,
                                      profile.steps, first, last,
                                      cpu_waits=profile.cpu_waits, blocked=profile.blocked,
                                      rank=rank)
    data.memory_timeline = profile.memory_timeline(rank, points=1000)
    return data
