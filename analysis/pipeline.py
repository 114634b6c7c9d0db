"""Pipeline parallelism: the bubble of each stage and what caused it.

A profile is a pipeline when ranks exchange send/recv messages; each such
rank is a stage (ordered by rank).  A stage's bubble (``bubble_ns`` of the
step breakdown) is the time its compute stream had nothing to do while a
send or receive waited for the neighbouring stage.  Each wait is charged
to a phase of the schedule:

``fill``     the first wait to receive activations in the step (stage s
             waits for the s stages before it to process the first
             micro-batch)
``drain``    the first wait to receive gradients in the step (the
             turnaround from forward to backward through the later stages)
``steady``   every other wait, and every wait of a send for its receiver: a
             neighbour slower than this stage (stage imbalance), or a
             schedule that lets it fall behind

A wait's ``direction`` is the way its data flows: ``forward`` for
activations (received from a lower stage, or sent to a higher one),
``backward`` for gradients.

For GPipe with p stages of equal cost and m micro-batches the bubble is
``(p - 1) / (m + p - 1)`` of the step (``ideal_ratio``): fill and drain
bubbles near it are the schedule's own cost (more micro-batches shrink
it); steady bubbles mean the stages are unbalanced.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import comm as _comm
from msprof.analysis.comm import COMM_STREAM
from msprof.analysis.intervals import covered, segments


def stages(comms: pd.DataFrame) -> list[int]:
    """Ranks that exchanged point-to-point messages (the stages), in order."""
    p2p = comms[comms["kind"].isin(_comm.P2P)]
    return sorted(set(p2p["rank"].astype(int)) | set(p2p.loc[p2p["peer"] >= 0, "peer"].astype(int)))


def bubble_waits(kernels: pd.DataFrame, comms: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Every send/recv wait with ``step``, ``direction`` (``forward``:
    activations, ``backward``: gradients), ``phase`` and ``exposed_ns``
    (the part with no compute kernel running)."""
    w = _comm.waits(comms)
    w = w[w["p2p"]]
    cols = ["rank", "step", "start_ns", "end_ns", "wait_ns", "exposed_ns", "waited_for",
            "direction", "phase"]
    if w.empty or steps.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    win = steps[["rank", "step", "start_ns", "dur_ns"]].rename(
        columns={"start_ns": "w0", "dur_ns": "wn"}).sort_values("w0", kind="stable")
    w = pd.merge_asof(w.sort_values("start_ns", kind="stable"), win, left_on="start_ns",
                      right_on="w0", by="rank", direction="backward")
    w = w[w["w0"].notna() & (w["start_ns"] < w["w0"] + w["wn"])].copy()
    w["step"] = w["step"].astype("int64")
    comp = kernels[kernels["stream"] != COMM_STREAM]
    segs = segments(pd.DataFrame({"rank": comp["rank"], "start_ns": comp["start_ns"],
                                  "end_ns": comp["start_ns"] + comp["dur_ns"]}))
    hidden = covered(segs, pd.DataFrame({"rank": w["rank"], "a": w["start_ns"], "b": w["end_ns"]}))
    w["exposed_ns"] = w["wait_ns"] - hidden
    recv = (w["kind"] == "recv").to_numpy()
    lower = (w["waited_for"] < w["rank"]).to_numpy()
    w["direction"] = np.where(recv == lower, "forward", "backward")
    w = w.sort_values(["rank", "step", "start_ns"], kind="stable")
    first = (w["kind"] == "recv") & ~w.assign(r=w["kind"] == "recv").duplicated(
        ["rank", "step", "direction", "r"])
    w["phase"] = np.where(first, np.where(w["direction"] == "forward", "fill", "drain"), "steady")
    return w[cols].reset_index(drop=True)


def stage_stats(step_df: pd.DataFrame, comms: pd.DataFrame, waits: pd.DataFrame) -> pd.DataFrame:
    """Per stage: ``steps``, ``step_ns``, ``compute_ns``, ``bubble_ns`` (median
    per step), ``bubble_ratio`` (median over steps of bubble / step),
    ``fill_ns``/``drain_ns``/``steady_ns``
    (exposed waits per step by phase), ``schedule_ratio`` (median over
    steps of fill and drain over the step: the part of the bubble the
    schedule itself costs; the rest is steady-state waits, stage imbalance),
    ``micro_batches`` (messages per step from the previous stage, or to
    the next one for the first stage) and ``ideal_ratio`` (GPipe's bubble
    for that many stages and micro-batches)."""
    st = stages(comms)
    cols = ["stage", "rank", "steps", "step_ns", "compute_ns", "bubble_ns", "bubble_ratio",
            "fill_ns", "drain_ns", "steady_ns", "schedule_ratio", "micro_batches",
            "ideal_ratio"]
    if not st or step_df.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    s = step_df[step_df["rank"].isin(st)]
    g = s.groupby("rank")
    # the typical step: medians (a warm-up step can last several others)
    out = pd.DataFrame({"steps": g.size(), "step_ns": g["step_ns"].median(),
                        "compute_ns": g["compute_ns"].median(),
                        "bubble_ns": g["bubble_ns"].median()})
    out["bubble_ratio"] = (s["bubble_ns"] / s["step_ns"]).groupby(s["rank"]).median()
    ph = waits.pivot_table(index="rank", columns="phase", values="exposed_ns", aggfunc="sum")
    for p in ("fill", "drain", "steady"):
        col = ph[p] if p in ph else pd.Series(dtype="float64")
        out[f"{p}_ns"] = out.index.map(col).fillna(0).to_numpy() / out["steps"]
    # per step, then the median: the warm-up step's fill and drain are long
    sched = waits[waits["phase"] != "steady"].groupby(["rank", "step"])["exposed_ns"].sum()
    ratio = s.set_index(["rank", "step"])
    ratio = (sched.reindex(ratio.index, fill_value=0) / ratio["step_ns"]).where(
        ratio["step_ns"] > 0, 0.0)
    out["schedule_ratio"] = out.index.map(ratio.groupby(level="rank").median()).fillna(0.0)
    sends = comms[(comms["kind"] == "send") & (comms["step"] >= 0)]
    fwd = sends[sends["peer"] > sends["rank"]]
    per = fwd.groupby(["rank", "step"]).size().groupby("rank").median()
    m = float(per.median()) if len(per) else np.nan
    p = len(st)
    out["micro_batches"] = m
    out["ideal_ratio"] = (p - 1) / (m + p - 1) if m == m else np.nan
    out.index.name = "rank"
    out = out.reset_index()
    out["stage"] = out["rank"].map({r: i for i, r in enumerate(st)})
    return out[cols]


def causes(waits: pd.DataFrame, n_steps: pd.Series) -> pd.DataFrame:
    """Exposed waits per (stage rank, phase, rank waited for): ``waits`` and
    ``per_step_ns``, largest first."""
    cols = ["rank", "phase", "waited_for", "waits", "per_step_ns"]
    if waits.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    g = waits.groupby(["rank", "phase", "waited_for"]).agg(
        waits=("exposed_ns", "size"), exposed=("exposed_ns", "sum")).reset_index()
    g["per_step_ns"] = g["exposed"] / g["rank"].map(n_steps).clip(lower=1)
    return g[cols].sort_values("per_step_ns", ascending=False, kind="stable").reset_index(drop=True)


def verdict(st: pd.DataFrame) -> str:
    if st.empty:
        return "not a pipeline (no send/recv between ranks)"
    worst = st.loc[st["bubble_ratio"].idxmax()]
    ideal = f" (GPipe ideal {worst['ideal_ratio']:.0%})" if worst["ideal_ratio"] == worst["ideal_ratio"] else ""
    steady = st["steady_ns"].sum() / max(st["bubble_ns"].sum(), 1)
    cause = "stage imbalance" if steady > 0.5 else "fill and drain of the schedule"
    return (f"{len(st)} stages; worst bubble {worst['bubble_ratio']:.0%} on stage "
            f"{int(worst['stage'])}{ideal}; mostly {cause}")
