"""The report's charts as plotly figures: pure functions from the analyses'
DataFrames to ``go.Figure`` (nothing is drawn by hand: bars, heat maps,
lines and hover boxes are plotly's).  Times are shown in microseconds
(milliseconds on a timeline window of 10 ms or more)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from msprof.analysis.flame import COMM, COMPUTE, MEMORY, OTHER
from msprof.analysis.sampling import ASLEEP, KINDS, WAIT
from msprof.analysis.units import fmt_bytes, fmt_ns

TEMPLATE = "plotly_white"
COLORS = {COMPUTE: "#e8853a", COMM: "#3a7fd0", MEMORY: "#3aa655", WAIT: "#c0392b",
          ASLEEP: "#b39ddb", OTHER: "#9e9e9e"}

# The parts of a step that add up to it (breakdown.py), in stacking order.
STEP_PARTS = (("compute_ns", "compute", COLORS[COMPUTE]),
              ("exposed_comm_ns", "exposed communication", COLORS[COMM]),
              ("bubble_ns", "pipeline bubble", "#8e44ad"),
              ("host_gap_ns", "host gaps (launch-bound)", "#f1c40f"),
              ("idle_ns", "idle", "#bdc3c7"))


def _us(ns):
    return ns / 1e3


def where_it_went(devices: pd.DataFrame) -> go.Figure:
    """Each rank's mean step as one stacked horizontal bar of its parts."""
    fig = go.Figure()
    label = [f"rank {r}" for r in devices["rank"]]
    for col, name, color in STEP_PARTS:
        if col not in devices:
            continue
        v = devices[col].fillna(0)
        fig.add_bar(y=label, x=_us(v), name=name, orientation="h", marker_color=color,
                    customdata=[[fmt_ns(x), f"{x / s:.0%}" if s else ""]
                                for x, s in zip(v, devices["step_ns"])],
                    hovertemplate="%{y}: " + name + " %{customdata[0]} (%{customdata[1]} of the "
                    "step)<extra></extra>")
    fig.update_layout(barmode="stack", template=TEMPLATE, height=90 + 28 * len(devices),
                      margin=dict(l=70, r=20, t=30, b=40), xaxis_title="mean step (us)",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0,
                                  traceorder="normal"),
                      yaxis=dict(autorange="reversed"))
    return fig


def step_breakdown(steps: pd.DataFrame, per_bar: int = 1) -> go.Figure:
    """Per rank (one row each, shared step axis), every step's time stacked
    by part; with ``per_bar`` > 1 each bar is the slowest of that many steps."""
    ranks = sorted(steps["rank"].unique())
    height = 120 + 190 * len(ranks)
    fig = make_subplots(rows=len(ranks), cols=1, shared_xaxes=True,
                        vertical_spacing=min(0.3, 45 / height),
                        subplot_titles=[f"rank {r}" for r in ranks])
    for i, r in enumerate(ranks, start=1):
        s = steps[steps["rank"] == r]
        for col, name, color in STEP_PARTS:
            if col not in s:
                continue
            fig.add_bar(x=s["step"], y=_us(s[col].fillna(0)), name=name, marker_color=color,
                        legendgroup=name, showlegend=i == 1, row=i, col=1,
                        customdata=[[fmt_ns(v), fmt_ns(t)] for v, t in zip(s[col].fillna(0),
                                                                            s["step_ns"])],
                        hovertemplate=f"rank {r} step %{{x}}: {name} %{{customdata[0]}} of "
                        "%{customdata[1]}<extra></extra>")
        fig.update_yaxes(title_text="us", row=i, col=1)
    fig.update_xaxes(title_text="step" + (f" (each bar: the slowest of {per_bar} steps)"
                                          if per_bar > 1 else ""), row=len(ranks), col=1)
    fig.update_layout(barmode="stack", bargap=0.1, template=TEMPLATE, height=height,
                      margin=dict(l=60, r=20, t=50, b=50), legend=dict(y=1, yanchor="top"))
    return fig


def timeline(sl: pd.DataFrame) -> go.Figure:
    """Per rank (one row each, shared time axis), the window's slices as
    horizontal bars on their lanes (streams, collectives, waits); hover
    names the op, its scope and its duration.  Zoom: drag; reset: double-click."""
    ranks = sorted(sl["rank"].unique())
    t0 = int(sl["start_ns"].min())
    span = int((sl["start_ns"] + sl["dur_ns"]).max()) - t0
    unit, scale = ("ms", 1e6) if span >= 10_000_000 else ("us", 1e3)
    lanes = {r: sorted(sl.loc[sl["rank"] == r, "lane"].unique(), key=_lane_order) for r in ranks}
    heights = [max(1, len(lanes[r])) for r in ranks]
    height = 100 + sum(28 * h + 45 for h in heights)
    fig = make_subplots(rows=len(ranks), cols=1, shared_xaxes=True,
                        vertical_spacing=min(0.3, 40 / height),
                        row_heights=heights, subplot_titles=[f"rank {r}" for r in ranks])
    in_legend = set()
    for i, r in enumerate(ranks, start=1):
        s = sl[sl["rank"] == r]
        for kind in KINDS:
            k = s[s["kind"] == kind]
            if k.empty:
                continue
            fig.add_bar(
                y=k["lane"], x=k["dur_ns"] / scale, base=(k["start_ns"] - t0) / scale,
                orientation="h",
                name=kind, legendgroup=kind, showlegend=kind not in in_legend,
                marker_color=COLORS[kind],
                marker_line_width=0, width=0.8, row=i, col=1,
                customdata=list(zip(k["name"], k["scope"], k["dur_ns"].map(fmt_ns),
                                    k["step"].map(lambda s: f", step {s}" if s >= 0 else ""))),
                hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>"
                f"%{{customdata[2]}} at %{{base:.3f}} {unit}%{{customdata[3]}}<extra></extra>")
            in_legend.add(kind)
        fig.update_yaxes(categoryorder="array", categoryarray=lanes[r][::-1], row=i, col=1)
    fig.update_xaxes(title_text=f"{unit} from the window's start", row=len(ranks), col=1)
    fig.update_layout(barmode="overlay", template=TEMPLATE, hovermode="closest", height=height,
                      margin=dict(l=90, r=20, t=50, b=50),
                      legend=dict(y=1, yanchor="top"))
    return fig


def _lane_order(lane: str):
    if lane.startswith("stream "):
        return (0, int(lane.split()[1]))
    return ({"collectives": 1, "CPU waits": 2, "asleep": 3}.get(lane, 4), 0)


def memory(timeline: pd.DataFrame, peaks: pd.DataFrame) -> go.Figure:
    """Bytes in use per rank over time (as steps), each rank's peak marked."""
    fig = go.Figure()
    t0 = int(timeline["ts_ns"].min())
    for r, g in timeline.groupby("rank"):
        fig.add_scatter(x=(g["ts_ns"] - t0) / 1e6, y=g["in_use"] / 2**20, mode="lines",
                        line_shape="hv", name=f"rank {r}",
                        customdata=g["in_use"].map(fmt_bytes),
                        hovertemplate=f"rank {r}: %{{customdata}} at %{{x:.3f}} ms<extra></extra>")
    if len(peaks):
        fig.add_scatter(x=(peaks["peak_ns"] - t0) / 1e6, y=peaks["peak"] / 2**20,
                        mode="markers", marker=dict(symbol="triangle-down", size=12,
                                                    color="black"),
                        name="peak",
                        customdata=list(zip(peaks["rank"], peaks["peak"].map(fmt_bytes),
                                            peaks["live_blocks"])),
                        hovertemplate="rank %{customdata[0]} peak: %{customdata[1]}, "
                        "%{customdata[2]} blocks live<extra></extra>")
    fig.update_layout(template=TEMPLATE, height=380, xaxis_title="ms since the first event",
                      yaxis_title="MiB in use", margin=dict(l=60, r=20, t=30, b=50))
    return fig


def live_at_peak(live: pd.DataFrame, top: int = 8) -> go.Figure:
    """What held the memory at each rank's peak: the ``top`` operators by
    bytes, one bar group per rank."""
    fig = go.Figure()
    for r, g in live.groupby("rank"):
        g = g.head(top)
        fig.add_bar(y=g["name"].astype(str), x=g["bytes"] / 2**20, orientation="h",
                    name=f"rank {r}",
                    customdata=list(zip(g["bytes"].map(fmt_bytes), g["share"], g["blocks"],
                                        g["scope"].fillna(""))),
                    hovertemplate=f"rank {r}: %{{y}} (%{{customdata[3]}})<br>%{{customdata[0]}} "
                    "in %{customdata[2]} blocks, %{customdata[1]:.0%} of the peak<extra></extra>")
    n = live.groupby("rank").head(top)["name"].nunique() if len(live) else 1
    fig.update_layout(template=TEMPLATE, barmode="group", height=120 + 30 * n,
                      xaxis_title="MiB live at the peak", yaxis=dict(autorange="reversed"),
                      margin=dict(l=200, r=20, t=30, b=50))
    return fig


def comm_matrix(matrix: pd.DataFrame, ranks: list[int]) -> go.Figure:
    """Bytes sent from each rank (rows) to each (columns) as a heat map;
    hover adds the transfer time and bandwidth."""
    idx = {r: i for i, r in enumerate(ranks)}
    n = len(ranks)
    z = [[None] * n for _ in range(n)]
    text = [[""] * n for _ in range(n)]
    for row in matrix.itertuples(index=False):
        if row.src in idx and row.dst in idx:
            i, j = idx[row.src], idx[row.dst]
            z[i][j] = row.bytes / 2**20
            text[i][j] = (f"{fmt_bytes(row.bytes)} in {fmt_ns(row.time_ns)}"
                          + (f", {row.gbps:.3g} GB/s" if pd.notna(row.gbps) else ""))
    labels = [f"rank {r}" for r in ranks]
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, text=text, colorscale="Blues",
                               colorbar_title="MiB", hoverongaps=False,
                               hovertemplate="%{y} → %{x}: %{text}<extra></extra>"))
    side = max(300, min(700, 60 * n + 160))
    fig.update_layout(template=TEMPLATE, height=side, width=side + 120,
                      xaxis_title="to", yaxis_title="from", yaxis_autorange="reversed",
                      margin=dict(l=80, r=20, t=30, b=60))
    return fig
