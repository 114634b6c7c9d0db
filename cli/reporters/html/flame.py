"""The interactive flamegraph: frame trees (analysis/flame.py) as plotly
icicles, roots on top.  Plotly zooms into a frame on click (and back out
on a click on the frame above) and shows name, value and shares on hover;
one trace per (metric, all ranks merged | ranks side by side), of which
the buttons above the chart show one.  Search is the page's script
(page.py): it greys the frames whose name does not match."""
from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from msprof.analysis.flame import Frame
from msprof.analysis.units import fmt_bytes, fmt_ns
from msprof.cli.reporters.html.figures import COLORS, TEMPLATE

MAX_DEPTH_SHOWN = 7     # levels drawn at once; a click on a frame shows the ones below it


@dataclass
class FlameView:
    """One tree to show: ``metric`` (device, launch, comm, memory), ``label``
    (the button's text), ``root``, ``unit`` (ns or B)."""
    metric: str
    label: str
    root: Frame
    unit: str


def _columns(root: Frame, unit: str) -> dict:
    fmt = fmt_bytes if unit == "B" else fmt_ns
    ids, labels, parents, values, colors, custom = [], [], [], [], [], []
    total = root.value or 1

    def visit(f: Frame, parent_id: str, my_id: str) -> None:
        ids.append(my_id)
        labels.append(f.name)
        parents.append(parent_id)
        values.append(f.value)
        colors.append(COLORS.get(f.cls, COLORS["other"]))
        custom.append((fmt(f.value), f.value / total, f.cls))
        for c in f.children:
            visit(c, my_id, f"{my_id}/{c.name}")

    visit(root, "", root.name)
    return dict(ids=ids, labels=labels, parents=parents, values=values,
                marker=dict(colors=colors, line=dict(width=1, color="white")), customdata=custom)


def figure(views: list[FlameView]) -> go.Figure:
    """One icicle per view, the first visible; buttons switch between them."""
    fig = go.Figure()
    for i, v in enumerate(views):
        fig.add_trace(go.Icicle(
            **_columns(v.root, v.unit), branchvalues="total", name=v.label, visible=i == 0,
            tiling=dict(orientation="v"), maxdepth=MAX_DEPTH_SHOWN, sort=False,
            textinfo="label", insidetextfont=dict(color="black"),
            hovertemplate="<b>%{label}</b><br>%{customdata[0]} (%{customdata[2]})<br>"
            "%{customdata[1]:.1%} of the total, %{percentParent:.1%} of the frame above<extra></extra>"))
    buttons = [dict(label=v.label, method="update",
                    args=[{"visible": [j == i for j in range(len(views))]}])
               for i, v in enumerate(views)]
    fig.update_layout(template=TEMPLATE, height=620, margin=dict(l=10, r=10, t=60, b=10),
                      updatemenus=[dict(type="buttons", direction="right", buttons=buttons,
                                        x=0, y=1.12, xanchor="left", yanchor="top",
                                        showactive=True)] if len(views) > 1 else [])
    return fig
