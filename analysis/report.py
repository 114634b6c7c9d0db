"""What ``msprof report`` shows, gathered as data: the header (meta.json)
and one entry per section.  ``to_json`` turns it into the one JSON document
of ``msprof report --format json``.

Sections (:data:`SECTIONS`), each a DataFrame or a dict of DataFrames with
a one-line ``verdict``:

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
"""
from __future__ import annotations

import json

import pandas as pd

from msprof.analysis import comm as _comm
from msprof.analysis import critical_path as _cpath
from msprof.analysis import hostbound as _host
from msprof.analysis import imbalance as _imb
from msprof.analysis import memory as _mem
from msprof.analysis import pipeline as _pipe

OP_COLUMNS = ["op_id", "name", "type", "scope", "calls", "total_ns", "self_ns", "mean_ns",
              "p50_ns", "p99_ns", "min_ns", "max_ns", "share", "step_share", "per_step_ns",
              "flops", "bytes", "gflops", "gbps", "ranks", "cpu_wait_ns", "blocked_ns"]

CPU_WAIT_COLUMNS = ["cpu_wait_ns", "compute_cpu_wait_ns", "blocked_ns"]

SECTIONS = ("ops", "types", "scopes", "devices", "steps", "comm", "imbalance", "pipeline",
            "memory", "hostbound", "critical_path", "findings")


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


def _memory_section(p, rank):
    pk, nf = p.memory_peaks(rank), p.leaks(rank)
    return {"verdict": _mem.verdict(pk, nf), "peaks": pk, "live_at_peak": p.live_at_peak(rank),
            "never_freed": nf, "timeline": p.memory_timeline(rank, points=100)}


def _host_section(p, rank):
    summary = p.host_summary(rank)
    return {"verdict": _host.verdict(summary, p.step_breakdown(rank)), "ranks": summary,
            "ops": p.launch_stats(rank), "gaps": p.host_gaps(rank)}


def _cp_section(p, rank):
    path = p.critical_path()
    step = int(path.attrs.get("step", -1)) if len(path) else None
    return {"verdict": _cpath.verdict(path), "step": step, "summary": _cpath.summary(path),
            "ops": _cpath.top_ops(path), "path": path}


def build(profile, rank: int | None = None, top: int | None = None,
          sections=None) -> dict:
    """``{"meta", "rank", <section>...}`` for the ``sections`` asked for
    (all of :data:`SECTIONS` when None).  ``top`` limits the operator table
    (all when None or 0); ``rank`` restricts the per-rank parts to one
    rank (cross-rank sections still use every rank)."""
    want = list(SECTIONS) if not sections else [s for s in SECTIONS if s in set(sections)]
    p = profile
    # Waits for a CPU and sleeps come from the scheduler's tracepoints: a
    # profile that could not see them (in-process backend) leaves them out,
    # not as zeros.
    unseen = [] if p.meta.get("backend") == "ebpf" else CPU_WAIT_COLUMNS
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
        "findings": lambda: p.findings(rank),
    }
    doc = {"meta": dict(p.meta), "rank": rank}
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
    return v


def to_json(doc: dict) -> dict:
    """The report as plain JSON values (DataFrames become lists of records)."""
    return {k: _plain(v) for k, v in doc.items()}
