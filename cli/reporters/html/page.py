"""The report page: one self-contained HTML document (plotly.js inlined once,
no network, no server) built from :class:`~.data.ReportData`.

Sections, each a ``<section id=...>``: ``lead`` (step time, where it went,
top findings), ``steps`` (breakdown per step and rank), ``timeline`` (a
window of steps per rank), ``flame`` (flamegraph with search), ``memory``
(in use over time, live at the peak), ``comm`` (matrix heat map) and
``findings`` (all of them, with their evidence)."""
from __future__ import annotations

import html
import json
from typing import Iterable

import pandas as pd
import plotly.io as pio
from plotly.offline import get_plotlyjs

from msprof.analysis.units import fmt_bytes, fmt_ns, fmt_ranks
from msprof.cli.reporters.html import figures
from msprof.cli.reporters.html import flame as flame_fig
from msprof.cli.reporters.html.data import ReportData

SECTION_IDS = ("lead", "steps", "timeline", "flame", "memory", "comm", "findings")
TITLES = {"lead": "Summary", "steps": "Step breakdown", "timeline": "Timeline",
          "flame": "Flamegraph", "memory": "Memory", "comm": "Communication",
          "findings": "Findings"}
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               "modeBarButtonsToRemove": ["sendDataToCloud", "lasso2d", "select2d"]}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:12px 24px}
header h1{margin:0;font-size:20px}
header .meta{font-size:13px;color:#cfd8dc;margin-top:4px}
nav{position:sticky;top:0;background:#eceff1;padding:6px 24px;z-index:10;border-bottom:1px solid #cfd8dc}
nav a{margin-right:16px;color:#1e4e8c;text-decoration:none;font-size:14px}
section{background:#fff;margin:16px 24px;padding:12px 20px;border:1px solid #e0e0e0;border-radius:6px}
section h2{margin:4px 0 8px;font-size:18px}
.note{color:#555;font-size:13px;margin:4px 0}
.warn{color:#b71c1c;font-weight:bold}
.big{font-size:28px;font-weight:600}
.kpis{display:flex;gap:32px;flex-wrap:wrap;margin-bottom:8px}
.kpi .label{font-size:12px;color:#666;text-transform:uppercase}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f5f5f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;color:#fff}
.sev.error{background:#c62828}.sev.warning{background:#ef6c00}.sev.info{background:#0277bd}
.finding{margin:10px 0;padding:6px 10px;border-left:4px solid #cfd8dc}
.finding .rec{color:#33691e;font-size:13px;margin-top:2px}
details summary{cursor:pointer;font-size:13px;color:#555}
#flame-search{font-size:14px;padding:3px 6px;width:280px}
"""

# The flamegraph's search: frames whose name contains the text keep their
# colour, the others turn grey; the line below says how much matched (each
# matching frame counted once, not again under a matching ancestor).
SEARCH_JS = """
(function(){
  const box = document.getElementById('flame-search');
  const out = document.getElementById('flame-match');
  const gd = document.getElementById('flame-plot');
  function search(){
    const q = box.value.trim().toLowerCase();
    const colors = [], idx = [];
    let said = '';
    gd.data.forEach(function(tr, i){
      if (tr.type !== 'icicle') return;
      if (!tr._msprofBase) tr._msprofBase = tr.marker.colors.slice();
      const hit = tr.labels.map(function(l){ return q !== '' && String(l).toLowerCase().includes(q); });
      colors.push(tr._msprofBase.map(function(c, k){ return q === '' || hit[k] ? c : '#e6e6e6'; }));
      idx.push(i);
      if (tr.visible === false || q === '') return;
      const byId = {}; tr.ids.forEach(function(id, k){ byId[id] = k; });
      let sum = 0, n = 0;
      tr.ids.forEach(function(id, k){
        if (!hit[k]) return;
        n += 1;
        for (let p = tr.parents[k]; p !== ''; p = tr.parents[byId[p]]) if (hit[byId[p]]) return;
        sum += tr.values[k];
      });
      said = n + ' frame(s) match, ' + (100 * sum / tr.values[0]).toFixed(1) + '% of the total';
    });
    Plotly.restyle(gd, {'marker.colors': colors}, idx);
    out.textContent = said;
  }
  box.addEventListener('input', search);
  gd.on('plotly_buttonclicked', function(){ setTimeout(search, 0); });
})();
"""


def _e(x) -> str:
    return html.escape(str(x))


def _plot(fig, div_id: str) -> str:
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config=PLOT_CONFIG, default_width="100%")


def _fmt_for(column: str):
    """How a column of an analysis table reads: times, bytes, shares, numbers."""
    if column.endswith("_ns"):
        return fmt_ns
    if "bytes" in column or column in ("peak", "final", "size"):
        return fmt_bytes
    if column in ("share", "step_share") or column.endswith("_frac"):
        return _pct
    return _num


def _num(v) -> str:
    if isinstance(v, float):
        return "" if pd.isna(v) else f"{v:.4g}"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    return str(v)


def _auto_table(df: pd.DataFrame, skip: tuple = ()) -> str:
    return _table(df, [(c, c.removesuffix("_ns"), str if df[c].dtype == object else _fmt_for(c))
                       for c in df.columns if c not in skip])


def _table(df: pd.DataFrame, columns: Iterable[tuple[str, str, callable]]) -> str:
    cols = list(columns)
    head = "".join(f"<th>{_e(t)}</th>" for _, t, _ in cols)
    rows = []
    for r in df.to_dict("records"):
        cells = []
        for c, _, f in cols:
            v = r.get(c)
            cls = ' class="num"' if f is not str else ""
            cells.append(f"<td{cls}>{_e(f(v) if v is not None else '')}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _pct(x) -> str:
    return "" if x is None or pd.isna(x) else f"{x:.1%}"


def _section(sid: str, body: str, note: str = "") -> str:
    n = f'<p class="note">{note}</p>' if note else ""
    return f'<section id="{sid}"><h2>{_e(TITLES[sid])}</h2>{n}{body}</section>'


def _not_here(sid: str, why: str) -> str:
    return _section(sid, f'<p class="note missing">{_e(why)}</p>')


def _header(meta: dict) -> str:
    cmd = meta.get("command") or []
    cmd = " ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd)
    ranks = [r.get("rank") for r in meta.get("ranks") or [] if isinstance(r, dict)]
    lost = int(meta.get("lost_events") or 0)
    bits = [f"backend {_e(meta.get('backend', '?'))}, mode {_e(meta.get('mode', '?'))}",
            f"{len(ranks)} rank(s)", f"{int(meta.get('events') or 0):,} events"]
    if "start_ns" in meta and "end_ns" in meta:
        bits.append(f"{_e(fmt_ns(meta['end_ns'] - meta['start_ns']))} recorded")
    if meta.get("attached"):
        bits.append("attached to a running job (steps may start mid-way)")
    lost_line = (f'<div class="meta warn">{lost:,} events were lost: every count and time '
                 "undercounts</div>" if lost else "")
    return (f"<header><h1>msprof report: {_e(cmd or '?')}</h1>"
            f"<div class=\"meta\">{' · '.join(bits)}</div>{lost_line}</header>")


def _finding_html(f: dict, step_ns: float | None, evidence: bool) -> str:
    impact = int(f.get("impact_ns") or 0)
    share = f" ({impact / step_ns:.0%} of the step)" if step_ns else ""
    who = fmt_ranks(f["ranks"]) if f.get("ranks") else "all ranks"
    ops = f" · ops: {_e(', '.join(f['ops'][:5]))}" if f.get("ops") else ""
    rec = f'<div class="rec">→ {_e(f["recommendation"])}</div>' if f.get("recommendation") else ""
    ev = ""
    if evidence and f.get("evidence"):
        rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(json.dumps(v) if isinstance(v, (dict, list)) else v)}"
                       "</td></tr>" for k, v in f["evidence"].items())
        ev = f"<details><summary>evidence</summary><table>{rows}</table></details>"
    return (f'<div class="finding"><span class="sev {_e(f["severity"])}">{_e(f["severity"])}</span> '
            f"<b>{_e(f['kind'])}</b> · {_e(who)}{ops} · impact {_e(fmt_ns(impact))}/step{share}"
            f"<div>{_e(f['message'])}</div>{rec}{ev}</div>")


def _lead(d: ReportData) -> str:
    doc = d.doc
    devices = doc.get("devices")
    parts, step_ns = [], None
    if devices is not None and len(devices):
        slow = devices.loc[devices["step_ns"].idxmax()]
        step_ns = float(slow["step_ns"])
        kpis = [("step time", fmt_ns(step_ns), f"mean, rank {int(slow['rank'])} (slowest)"),
                ("steps", f"{int(devices['steps'].max()):,}", "per rank"),
                ("compute", _pct(slow.get("compute_frac")), "of the step"),
                ("exposed comm", _pct(slow.get("exposed_comm_frac")), "of the step"),
                ("host gaps", _pct(slow.get("host_gap_frac")), "of the step"),
                ("idle", _pct(slow.get("idle_frac")), "of the step")]
        parts.append('<div class="kpis">' + "".join(
            f'<div class="kpi"><div class="label">{_e(a)}</div><div class="big">{_e(b)}</div>'
            f'<div class="note">{_e(c)}</div></div>' for a, b, c in kpis) + "</div>")
        parts.append("<h3>Where the step went</h3>" + _plot(figures.where_it_went(devices), "lead-plot"))
    elif d.not_recorded:
        parts.append('<p class="note">Summary mode: per-operator totals only; not recorded: '
                     f"{_e(', '.join(d.not_recorded))} (record with --mode trace for timelines, "
                     "breakdowns and findings).</p>")
    else:
        parts.append('<p class="note">No steps recorded, so no step breakdown.</p>')
    findings = doc.get("findings") or []
    if findings:
        parts.append("<h3>Top findings</h3>" + "".join(
            _finding_html(f, step_ns, evidence=False) for f in findings[:3]))
    elif "findings" in doc:
        parts.append('<p class="note">No findings: nothing stood out.</p>')
    ops = doc.get("ops")
    if ops is not None and len(ops):
        parts.append("<h3>Top operators</h3>" + _table(ops.head(10), [
            ("name", "operator", str), ("type", "type", str), ("calls", "calls", lambda v: f"{v:,}"),
            ("total_ns", "total", fmt_ns), ("mean_ns", "mean", fmt_ns), ("share", "share", _pct)]))
    return _section("lead", "".join(parts)), step_ns


def _steps(d: ReportData) -> str:
    if d.steps is None:
        return _not_here("steps", "Not recorded in summary mode (record with --mode trace).")
    if d.steps.empty:
        return _not_here("steps", "No steps recorded.")
    per = d.steps.attrs.get("per_bar", 1)
    note = ("Each step's time, stacked: compute, exposed communication, pipeline bubble, "
            "host gaps, idle. Drag to zoom; double-click to reset.")
    if per > 1:
        note += f" {per} steps per bar (the slowest of them), to keep the chart light."
    return _section("steps", _plot(figures.step_breakdown(d.steps, per), "steps-plot"), note)


def _timeline(d: ReportData) -> str:
    if d.steps is None:
        return _not_here("timeline", "Not recorded in summary mode (record with --mode trace).")
    if d.slices is None:
        return _not_here("timeline", "No steps recorded.")
    if d.slices.empty:
        return _not_here("timeline", "Nothing ran in the chosen steps.")
    first, last = d.slices.attrs["window"]
    steps = f"step {first}" if first == last else f"steps {first}-{last}"
    note = (f"{steps} (choose with --window A:B), {len(d.slices):,} slices: kernels per "
            "stream, collectives, waits for a CPU and sleeps. Hover for the op, its scope and "
            "duration; drag to zoom, double-click to reset.")
    if d.slices.attrs.get("dropped"):
        note += (f" The {d.slices.attrs['dropped']:,} shortest slices "
                 f"({fmt_ns(d.slices.attrs['dropped_ns'])} in all) are left out to keep the page "
                 "light.")
    return _section("timeline", _plot(figures.timeline(d.slices), "timeline-plot"), note)


def _flame(d: ReportData) -> str:
    if not d.flames:
        return _not_here("flame", "No kernel time, communication or allocations recorded.")
    search = ('<div><input id="flame-search" type="search" placeholder="search frames (op, type, '
              'scope)"> <span id="flame-match" class="note"></span></div>')
    note = ("Step → cell scopes → op type → op, widths by the metric chosen above the chart. "
            "Click a frame to zoom into it, the frame above to zoom out.")
    return _section("flame", search + _plot(flame_fig.figure(d.flames), "flame-plot"), note)


def _memory(d: ReportData) -> str:
    mem = d.doc.get("memory") or {}
    verdict = mem.get("verdict", "")
    if d.memory_timeline is None or d.memory_timeline.empty:
        peaks = mem.get("peaks")
        body = ""
        if peaks is not None and len(peaks):
            body = _auto_table(peaks)
        return _section("memory", body or '<p class="note missing">No pool events recorded.</p>',
                        _e(verdict))
    body = _plot(figures.memory(d.memory_timeline, mem["peaks"]), "memory-plot")
    live = mem.get("live_at_peak")
    if live is not None and len(live):
        body += "<h3>Live at the peak</h3>" + _plot(figures.live_at_peak(live), "live-plot")
    nf = mem.get("never_freed")
    if nf is not None and len(nf):
        # first_ns/last_ns are clock readings, not durations: the steps say when
        body += "<h3>Never freed</h3>" + _auto_table(nf.head(20),
                                                    skip=("op_id", "first_ns", "last_ns"))
    return _section("memory", body, _e(verdict))


def _comm(d: ReportData) -> str:
    comm = d.doc.get("comm") or {}
    matrix = comm.get("matrix")
    if matrix is None or matrix.empty:
        return _section("comm", '<p class="note missing">No data exchanged between ranks.</p>',
                        _e(comm.get("verdict", "")))
    body = _plot(figures.comm_matrix(matrix, d.ranks if len(d.ranks) > 1 else
                                     sorted(set(matrix["src"]) | set(matrix["dst"]))), "comm-plot")
    coll = comm.get("collectives")
    if coll is not None and len(coll):
        body += "<h3>Collectives</h3>" + _auto_table(coll.head(20))
    return _section("comm", body, _e(comm.get("verdict", "")) + " Bytes sent from each rank "
                    "(row) to each (column); hover for the transfer time and bandwidth.")


def _findings(d: ReportData, step_ns) -> str:
    if "findings" not in d.doc:
        return _not_here("findings", "Not recorded in summary mode (record with --mode trace).")
    fs = d.doc["findings"]
    if not fs:
        return _section("findings", '<p class="note">Nothing stood out.</p>')
    return _section("findings", "".join(_finding_html(f, step_ns, evidence=True) for f in fs),
                    "Most important first: errors, then bottlenecks by the time per step a fix "
                    "would save.")


def render(d: ReportData) -> str:
    """The whole page as one string."""
    lead, step_ns = _lead(d)
    body = [lead, _steps(d), _timeline(d), _flame(d), _memory(d), _comm(d),
            _findings(d, step_ns)]
    nav = "".join(f'<a href="#{s}">{_e(TITLES[s])}</a>' for s in SECTION_IDS)
    cmd = d.doc["meta"].get("command") or []
    title = "msprof: " + (" ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style>"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
            f"{_header(d.doc['meta'])}<nav>{nav}</nav>{''.join(body)}"
            f"<script>{SEARCH_JS if d.flames else ''}</script></body></html>")
