"""Per-device step breakdown: exact numbers on the reference profile, and a
brute-force timeline as the oracle on random profiles."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msprof.analysis import breakdown
from profiles import clean_profile, ref, ref_dir  # noqa: F401  (fixtures)

PARTS = ["busy_ns", "host_gap_ns", "idle_ns"]


def test_reference_steps(ref):
    b = ref.step_breakdown()
    got = b[["rank", "step", "step_ns", "busy_ns", "host_gap_ns", "idle_ns", "queued_ns",
             "kernels", "comm_ns"]].values.tolist()
    assert got == [
        [0, 0, 1000, 600, 150, 250, 50, 4, 100],
        [0, 1, 1000, 500, 0, 500, 200, 2, 0],
        [1, 0, 1000, 300, 700, 0, 0, 2, 0],
        [1, 1, 1000, 0, 0, 1000, 0, 0, 0],
    ]
    assert (b[PARTS].sum(axis=1) == b["step_ns"]).all()
    assert list(b["mem_peak"]) == [1500, 4000, 2048, 2048]


def test_reference_devices(ref):
    d = ref.device_breakdown().set_index("rank")
    assert d.loc[0, ["steps", "step_ns", "busy_ns", "host_gap_ns", "idle_ns"]].tolist() == [
        2, 1000, 550, 75, 375]
    assert d.loc[1, ["busy_frac", "host_gap_frac", "idle_frac"]].tolist() == [0.15, 0.35, 0.5]
    assert list(d["mem_peak"]) == [4000, 2048]
    assert (d[PARTS].sum(axis=1) == d["step_ns"]).all()


def test_one_rank(ref):
    b = ref.step_breakdown(rank=1)
    assert list(b["rank"]) == [1, 1] and list(b["host_gap_ns"]) == [700, 0]
    assert ref.device_breakdown(rank=1)["rank"].tolist() == [1]


def test_gaps(ref):
    g = ref.gaps(rank=0)
    assert g[["step", "start_ns", "end_ns", "host_ns", "queued_ns", "next_op_id", "tail"]
             ].values.tolist() == [
        [0, 1000, 1100, 50, 50, 1, False],
        [0, 1300, 1400, 100, 0, 2, False],
        [0, 1800, 2000, 0, 0, -1, True],
        [1, 2400, 2600, 0, 200, 2, False],
        [1, 2700, 3000, 0, 0, -1, True],
    ]
    # A step without kernels is one tail gap.
    assert ref.gaps(rank=1).values.tolist()[-1][:5] == [1, 1, 2000, 3000, 1000]


def test_unknown_launch_is_never_host_bound():
    kernels = pd.DataFrame({"rank": [0, 0], "op_id": [1, 2], "launch_ns": [-1, 0],
                            "start_ns": [10, 50], "dur_ns": [10, 10]})
    steps = pd.DataFrame({"rank": [0], "step": [0], "start_ns": [0], "dur_ns": [100]})
    b = breakdown.step_breakdown(kernels, steps, pd.DataFrame(columns=["rank", "ts_ns", "in_use"]))
    assert b[PARTS].values.tolist() == [[20, 0, 80]]


def _oracle(kernels: pd.DataFrame, steps: pd.DataFrame):
    """busy, host, idle per step by walking every nanosecond."""
    out = []
    for s in steps.itertuples():
        lo, hi = s.start_ns, s.start_ns + s.dur_ns
        t = np.arange(lo, hi)
        busy = np.zeros(len(t), bool)
        pending_launch = np.full(len(t), np.iinfo(np.int64).max)  # min launch of kernels still to start
        to_come = np.zeros(len(t), bool)
        for k in kernels.itertuples():
            a, b = max(k.start_ns, lo), min(k.start_ns + k.dur_ns, hi)
            if b <= a:
                continue
            busy |= (t >= a) & (t < b)
            later = t < a
            to_come |= later
            launch = k.launch_ns if k.launch_ns > 0 else np.iinfo(np.int64).min
            pending_launch = np.where(later, np.minimum(pending_launch, launch), pending_launch)
        host = ~busy & to_come & (t < pending_launch)
        out.append([int(busy.sum()), int(host.sum()), int((~busy & ~host).sum())])
    return out


@st.composite
def random_profile(draw):
    n_steps = draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(30, 80), min_size=n_steps, max_size=n_steps))
    starts = np.cumsum([5] + [ln + draw(st.integers(0, 5)) for ln in lengths[:-1]])
    steps = pd.DataFrame({"rank": 0, "step": range(n_steps), "start_ns": starts,
                          "dur_ns": lengths})
    end = int(starts[-1] + lengths[-1] + 5)
    rows = draw(st.lists(st.tuples(st.integers(0, end), st.integers(1, 30), st.integers(-5, 40),
                                   st.integers(0, 1)), max_size=12))
    kernels = pd.DataFrame(
        [(0, i, st_, 0 if lag < 0 else max(st_ - lag, 1), start, dur)
         for i, (start, dur, lag, st_) in enumerate(rows)],
        columns=["rank", "op_id", "stream", "launch_ns", "start_ns", "dur_ns"])
    return kernels, steps


@settings(max_examples=100, deadline=None)
@given(random_profile())
def test_breakdown_matches_a_timeline_walk(case):
    kernels, steps = case
    memory = pd.DataFrame(columns=["rank", "ts_ns", "in_use"]).astype("int64")
    b = breakdown.step_breakdown(kernels, steps, memory)
    assert (b[PARTS].sum(axis=1) == b["step_ns"]).all()
    assert (b[PARTS + ["queued_ns"]] >= 0).all().all()
    assert (b["queued_ns"] <= b["idle_ns"]).all()
    assert b[PARTS].values.tolist() == _oracle(kernels, steps)
    g = breakdown.gaps(kernels, steps)
    per_step = g.groupby("step")[["dur_ns", "host_ns"]].sum().reindex(b["step"], fill_value=0)
    assert (per_step["dur_ns"].to_numpy() == (b["step_ns"] - b["busy_ns"]).to_numpy()).all()
    assert (per_step["host_ns"].to_numpy() == b["host_gap_ns"].to_numpy()).all()
