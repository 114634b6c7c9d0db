"""What ``msprof report`` shows, gathered as data: the header (meta.json)
and one entry per section.  ``to_json`` turns it into the one JSON document
of ``msprof report --format json``.

Sections (:data:`SECTIONS`), each a DataFrame or a dict of DataFrames with
a one-line ``verdict``:

``overview``       the typical step, where it went per rank, throughput and
                   the top findings with their gain (the first screen)
``ops``            per-operator statistics (the ``top`` by total time)
``types``          the same per operator type
``scopes``         per scope prefix (self and subtree time)
``devices``        per rank, the mean step's breakdown
``steps``          per rank and step, the breakdown
``comm``           collectives per kind and size, the rank x rank matrix,
                   overlap per rank, exposed time per communication op
``imbalance``      load-imbalance index per step, slow ranks, links, groups
``pipeline``       bubble per stage and its causes
``memory``         peaks, what was live at them, never-freed blocks, timeline
``hostbound``      launch cost and tiny kernels per rank and op, host gaps
``critical_path``  one step's critical path across ranks and its breakdown
``findings``       the ranked bottlenecks (list of dicts)

A summary-mode profile (``msprof run --mode summary``) has no kernel or
pool timeline: only :data:`SUMMARY_SECTIONS` are built from it (``comm``
without the overlap and per-op parts, which need kernel times; ``memory``
as ``peaks`` and ``by_op`` from memory_summary), and the document's
``not_recorded`` lists the sections asked for that it cannot give, rather
than computing them from an empty kernel table (a fully idle device).
"""
from __future__ import annotations

import json
import math

import pandas as pd

from msprof.analysis import chunks as _chunks
from msprof.analysis import comm as _comm
from msprof.analysis import critical_path as _cpath
from msprof.analysis import findings as _find
from msprof.analysis import hostbound as _host
from msprof.analysis import imbalance as _imb
from msprof.analysis import memory as _mem
from msprof.analysis import overview as _overview
from msprof.analysis import pipeline as _pipe
from msprof.analysis import summary_stats as _summary

OP_COLUMNS = ["op_id", "name", "type", "scope", "calls", "total_ns", "self_ns", "mean_ns",
              "p50_ns", "p99_ns", "min_ns", "max_ns", "share", "step_share", "per_step_ns",
              "flops", "bytes", "gflops", "gbps", "ranks", "cpu_wait_ns", "blocked_ns"]

CPU_WAIT_COLUMNS = ["cpu_wait_ns", "compute_cpu_wait_ns", "blocked_ns"]

SECTIONS = ("overview", "ops", "types", "scopes", "devices", "steps", "comm", "imbalance",
            "pipeline", "memory", "hostbound", "critical_path", "findings")

# What a summary-mode profile can answer: per-operator aggregates, the
# collectives (recorded one by one in both modes) and the pool's aggregates.
SUMMARY_SECTIONS = ("overview", "ops", "types", "scopes", "comm", "memory")


def _comm_section(p, rank):
    stats = p.comm_stats(rank)
    ov = p.overlap(rank)
    return {"verdict": _comm.verdict(stats, ov), "collectives": stats,
            "matrix": p.comm_matrix(), "overlap": ov, "ops": p.comm_ops(rank)}


def _imbalance_section(p, rank):
    steps, ranks = p.imbalance(), p.slow_ranks()
    cpus = p.compute_cpus()
    if len(cpus):         # eBPF: where each rank's compute ran (a slower core slows a rank)
        main = cpus[cpus["share"] >= 0.1].groupby("rank")["cpu"].apply(
            lambda c: " ".join(str(x) for x in sorted(c)))
        ranks = ranks.assign(cpus=ranks["rank"].map(main).fillna(""))
    return {"verdict": _imb.verdict(steps, ranks), "steps": steps, "ranks": ranks,
            "links": p.links(), "groups": p.groups()}


def _pipeline_section(p, rank):
    st = p.pipeline()
    return {"verdict": _pipe.verdict(st), "stages": st, "causes": p.bubble_causes()}


def _summary_comm_section(p, rank):
    stats = p.comm_stats(rank)
    return {"verdict": _summary_comm_verdict(stats), "collectives": stats,
            "matrix": p.comm_matrix()}


def _summary_comm_verdict(stats) -> str:
    if stats.empty:
        return "no communication recorded"
    line = f"{int(stats['count'].sum()):,} collective(s)"
    if stats["busbw"].notna().any():
        best = stats.loc[stats["busbw"].idxmax()]
        line += f"; best bus bandwidth {best['busbw']:.3g} GB/s ({best['kind']})"
    return line + "; overlap with compute not recorded in summary mode"


def _summary_memory_section(p, rank):
    peaks, by_op = p.summary_memory_peaks(rank), p.summary_memory_by_op(rank)
    return {"verdict": _summary.memory_verdict(peaks, by_op), "peaks": peaks, "by_op": by_op}


def _memory_section(p, rank):
    pk, nf = p.memory_peaks(rank), p.leaks(rank)
    return {"verdict": _mem.verdict(pk, nf), "peaks": pk, "live_at_peak": p.live_at_peak(rank),
            "never_freed": nf, "timeline": p.memory_timeline(rank, points=100)}


def _host_section(p, rank):
    summary = p.host_summary(rank)
    verdict = _host.verdict(summary, p.step_breakdown(rank), p.meta.get("framework"))
    return {"verdict": verdict, "ranks": summary, "ops": p.launch_stats(rank),
            "gaps": p.host_gaps(rank)}


def _cp_section(p, rank):
    path = p.critical_path()
    step = int(path.attrs.get("step", -1)) if len(path) else None
    return {"verdict": _cpath.verdict(path), "step": step, "summary": _cpath.summary(path),
            "ops": _cpath.top_ops(path), "path": path, "ranks": len(p.ranks)}


# What a framework's profile cannot fill, said once rather than shown as
# zeros (docs/FORMAT.md: kernels of a framework's CPU operators).
FRAMEWORK_NOTES = {
    "torch": [
        "PyTorch on a CPU: each operator runs on the thread that calls it, so there "
        "is no launch queue and no device stream apart from the host; 'kernel' time "
        "is the operators' own CPU time (self), 'host gaps' is Python between "
        "operators, and the gloo collectives run on gloo's own threads.",
    ],
}


def build(profile, rank: int | None = None, top: int | None = None,
          sections=None) -> dict:
    """``{"meta", "rank", <section>...}`` for the ``sections`` asked for
    (all of :data:`SECTIONS` when None).  ``top`` limits the operator table
    (all when None or 0); ``rank`` restricts the per-rank parts to one
    rank (cross-rank sections still use every rank).  Of a summary-mode
    profile, only :data:`SUMMARY_SECTIONS` are built and ``not_recorded``
    lists the other sections asked for."""
    want = list(SECTIONS) if not sections else [s for s in SECTIONS if s in set(sections)]
    p = profile
    # Waits for a CPU and sleeps come from the scheduler's tracepoints: a
    # profile that could not see them (in-process backend) leaves them out,
    # not as zeros; nor can a summary put them on kernels it has no times of.
    seen = p.meta.get("backend") == "ebpf" and not p.summary_mode
    unseen = [] if seen else CPU_WAIT_COLUMNS
    make = {
        "ops": lambda: (lambda o: o.head(top) if top else o)(p.op_stats(rank))[
            [c for c in OP_COLUMNS if c not in unseen]],
        "types": lambda: p.type_stats(rank).drop(columns=unseen, errors="ignore"),
        "scopes": lambda: p.scope_stats(rank),
        "devices": lambda: p.device_breakdown(rank).drop(columns=unseen, errors="ignore"),
        "steps": lambda: p.step_breakdown(rank).drop(columns=unseen, errors="ignore"),
        "comm": lambda: _comm_section(p, rank),
        "imbalance": lambda: _imbalance_section(p, rank),
        "pipeline": lambda: _pipeline_section(p, rank),
        "memory": lambda: _memory_section(p, rank),
        "hostbound": lambda: _host_section(p, rank),
        "critical_path": lambda: _cp_section(p, rank),
    }
    found: list = []       # the findings, computed once for two sections

    def findings():
        if not found:
            found.append(p.findings(rank))
        return found[0]

    steps = p.steps if rank is None else p.steps[p.steps["rank"] == rank]
    make["findings"] = findings
    make["overview"] = lambda: _overview.overview(
        steps, _find.typical_steps(p.step_breakdown(rank)), findings())
    doc = {"meta": dict(p.meta), "rank": rank}
    notes = FRAMEWORK_NOTES.get(p.meta.get("framework") or "")
    if notes:
        doc["framework_notes"] = notes
    if p.meta.get("complete") is False:
        doc["partial"] = _chunks.partial_note(p.meta)
    if p.summary_mode:
        make["overview"] = lambda: _overview.overview(steps, None, None)
        make["comm"] = lambda: _summary_comm_section(p, rank)
        make["memory"] = lambda: _summary_memory_section(p, rank)
        doc["not_recorded"] = [s for s in want if s not in SUMMARY_SECTIONS]
        want = [s for s in want if s in SUMMARY_SECTIONS]
    for name in want:
        doc[name] = make[name]()
    return doc


def _records(df: pd.DataFrame) -> list[dict]:
    # pandas writes NaN/NA as null and numpy integers as JSON integers.
    return json.loads(df.to_json(orient="records", double_precision=15))


def _plain(v):
    if isinstance(v, pd.DataFrame):
        return _records(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None     # as pandas writes NaN in a table: JSON has no NaN (a mean of no kernel)
    return v


def to_json(doc: dict) -> dict:
    """The report as plain JSON values (DataFrames become lists of records)."""
    return {k: _plain(v) for k, v in doc.items()}
