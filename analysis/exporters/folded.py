"""Folded stacks (``frame;frame;... count``) for flamegraph.pl, inferno and
speedscope: one line per distinct stack of :func:`msprof.analysis.flame.stacks`,
``rank N`` as the root frame, counts in the metric's unit (ns, or bytes for
``memory``).  The counts sum to the metric's total."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from msprof.analysis import flame


def export(profile, out: Path, metric: str = "device", rank: Optional[int] = None,
           per_step: bool = False) -> Path:
    rows = flame.stacks(profile, metric, rank=rank, per_step=per_step, by_rank=True)
    rows = rows.sort_values(["rank", "stack"], kind="stable")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for line in flame.folded_lines(rows):
            f.write(line + "\n")
    return out
