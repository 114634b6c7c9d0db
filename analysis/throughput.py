"""Throughput: the samples a job trains on per step and per second.

The steps table carries, per rank and step, the samples the step trained
on as that rank counts them (docs/FORMAT.md: the ranks' counts of one step
add up to the job's batch; 0 where unknown).  A step's time is the typical
(median) step of each rank, averaged over the ranks, as the findings judge
it: the warm-up step, which can last several typical ones, would otherwise
weigh on a short run more than on a long one, and two runs of different
batch sizes (hence step counts) would not compare.
"""
from __future__ import annotations

import math

import pandas as pd


def typical_step_ns(steps: pd.DataFrame) -> float:
    """The median step duration of each rank, averaged over the ranks (NaN
    without steps)."""
    if steps.empty:
        return float("nan")
    return float(steps.groupby("rank")["dur_ns"].median().mean())


def samples_per_step(steps: pd.DataFrame) -> float:
    """The job's samples per step: per step number, the ranks' counts
    summed; the median over the steps.  NaN when any step's count is
    unknown (0 on every rank: a profile written before samples were
    recorded, or a step the runtime did not count)."""
    if steps.empty or "samples" not in steps:
        return float("nan")
    per_step = steps.groupby("step")["samples"].sum()
    if (per_step <= 0).any():
        return float("nan")
    return float(per_step.median())


def throughput(steps: pd.DataFrame) -> dict:
    """``steps`` (distinct step numbers), ``step_ns`` (the typical step),
    ``samples_per_step``, ``samples_per_s`` and ``ns_per_sample`` (None
    where unknown: plain values, as JSON writes them)."""
    step_ns = typical_step_ns(steps)
    samples = samples_per_step(steps)
    known = not math.isnan(samples) and step_ns > 0
    return {"steps": int(steps["step"].nunique()) if len(steps) else 0,
            "step_ns": None if math.isnan(step_ns) else step_ns,
            "samples_per_step": samples if known else None,
            "samples_per_s": samples / step_ns * 1e9 if known else None,
            "ns_per_sample": step_ns / samples if known else None}
