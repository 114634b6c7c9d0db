"""``msprof diff`` as rich tables (data in, text out into the Console given)."""
from __future__ import annotations

import pandas as pd
from rich.console import Console, Group, RenderableType
from rich.text import Text

from msprof.cli.reporters.named_rows import NamedRows, cut_path
from msprof.cli.reporters.table import _bytes, _ns, _pct, _table, findings_table


def _signed(ns) -> str:
    if ns is None or pd.isna(ns):
        return ""
    return ("+" if ns > 0 else "-" if ns < 0 else "") + _ns(abs(ns))


def _change(a, b) -> tuple[str, str]:
    """``b - a`` signed, with its share of ``a``, and the colour of the
    direction (more time is worse)."""
    if a is None or b is None:
        return "", ""
    pct = (b - a) / a if a else None
    return ((f"({_signed(b - a)}" + (f", {pct:+.1%})" if pct is not None and pct == pct else ")")),
            "red" if b > a else "green")


def step_line(step: dict) -> Text:
    """The typical step of A and of B."""
    return Text.assemble(("Step time: ", "bold"), f"{_ns(step['a_ns'])} -> {_ns(step['b_ns'])} ",
                         _change(step["a_ns"], step["b_ns"]), " (median step)")


def throughput_lines(tp: dict) -> list[Text]:
    """Samples per step and per second of each side, the time per sample,
    and what the verdict compares (per sample or per step) and why."""
    a, b = tp["a"], tp["b"]
    lines = []
    if tp["basis"] == "sample":
        lines.append(Text.assemble(("Time per sample: ", "bold"),
                                   f"{_ns(a['ns_per_sample'])} -> {_ns(b['ns_per_sample'])} ",
                                   _change(a["ns_per_sample"], b["ns_per_sample"])))
        gain = b["samples_per_s"] / a["samples_per_s"] - 1
        lines.append(Text.assemble(("Throughput: ", "bold"),
                                   f"{a['samples_per_s']:,.0f} -> {b['samples_per_s']:,.0f} "
                                   f"samples/s ({gain:+.1%}); batch {a['samples_per_step']:g} -> "
                                   f"{b['samples_per_step']:g}"))
    if tp.get("why"):
        lines.append(Text(tp["why"].capitalize() + ".", style="bold"))
    return lines


def ops_table(ops: pd.DataFrame, unit: str = "step") -> RenderableType:
    if not len(ops):
        return Text("Operators: no kernels in either profile.", style="dim")
    rows = [(str(r.scope or r.name),
             _ns(r.a_ns) if r.change != "new" else "new",
             _ns(r.b_ns) if r.change != "removed" else "removed",
             _signed(r.delta_ns), _pct(r.pct))
            for r in ops.itertuples(index=False)]
    return NamedRows(lambda: _table(f"Operators (time per {unit}, B - A; matched by scope "
                                    "and type)"), "operator", ("A", "B", "delta", "change"), rows,
                     cut=cut_path)


def devices_table(dev: pd.DataFrame) -> RenderableType:
    if not len(dev):
        return Text("Devices: no steps in either profile.", style="dim")
    t = _table("Devices (median step, B - A)")
    parts = [("step", "step_ns"), ("compute", "compute_ns"), ("exp.comm", "exposed_comm_ns"),
             ("bubble", "bubble_ns"), ("host gaps", "host_gap_ns"), ("idle", "idle_ns")]
    t.add_column("rank", justify="right")
    for name, _ in parts:
        t.add_column(name, justify="right", no_wrap=True)
    for r in dev.to_dict("records"):
        t.add_row(str(r["rank"]), *[_signed(r.get(f"{c}_delta")) for _, c in parts])
    return t


def memory_table(mem: pd.DataFrame) -> RenderableType | None:
    """Per rank, the pool's peak and final bytes in use, B - A (None when
    neither profile has pool events)."""
    if not len(mem):
        return None
    t = _table("Memory (pool bytes in use, B - A)")
    for name in ("rank", "peak", "final"):
        t.add_column(name, justify="right", no_wrap=True)
    for r in mem.to_dict("records"):
        t.add_row(str(r["rank"]), *[_signed_bytes(r[f"{c}_delta"]) for c in ("peak", "final")])
    return t


def _signed_bytes(n) -> str:
    if n is None or pd.isna(n):
        return ""
    return ("+" if n > 0 else "-" if n < 0 else "") + _bytes(abs(n))


def not_compared_line(doc: dict) -> Text:
    """Why a comparison with a summary-mode profile leaves parts out."""
    which = " and ".join(side.upper() for side in ("a", "b") if doc[side].get("mode") == "summary")
    return Text(f"{which} {'is a' if len(which) == 1 else 'are'} summary-mode "
                f"profile{'' if len(which) == 1 else 's'}: not compared: "
                + ", ".join(doc["not_recorded"])
                + " (record both with --mode trace for those).", style="dim")


def render(doc: dict, console: Console) -> None:
    a, b = ", ".join(doc["a"]["sources"]), ", ".join(doc["b"]["sources"])
    tp = doc.get("throughput") or {"basis": "step"}
    parts: list[RenderableType] = [Text(f"A: {a}\nB: {b}"), "", step_line(doc["step"])]
    if "a" in tp:
        parts += throughput_lines(tp)
    parts += ["", ops_table(doc["ops"], tp["basis"]), ""]
    if doc.get("not_recorded"):
        parts += [not_compared_line(doc), ""]
    if "devices" in doc:
        parts += [devices_table(doc["devices"]), ""]
    mem = memory_table(doc["memory"]) if "memory" in doc else None
    if mem is not None:
        parts += [mem, ""]
    appeared = [f for f in doc["findings"] if f.get("change") == "appeared"]
    if appeared:
        parts.append(findings_table(appeared))
    elif "findings" not in doc.get("not_recorded", []):
        parts.append(Text("Findings: none appeared.", style="green"))
    if doc["vanished"]:
        parts += ["", Text("Vanished: " + "; ".join(f"{f['kind']} ({f['message']})"
                                                     for f in doc["vanished"]), style="green")]
    console.print(Group(*parts))
