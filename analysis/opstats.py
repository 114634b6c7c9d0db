"""Per-operator statistics: how often each operator's kernels ran, how long
they took, and how close they came to the arithmetic and memory rates the
operator's FLOPs and bytes imply.  Also the same per operator type and per
scope prefix (a cell of the model: self time and subtree time).

All times are nanoseconds.  Kernels are joined to the operators registered
by the same rank (``rank``, ``op_id``); a kernel whose operator was never
registered is kept under the name ``op<id>``.

Columns common to the tables returned here:

``calls``      kernels executed
``total_ns``   sum of their durations
``self_ns``    time in the row's own kernels.  The runtime's kernels are flat
               (no kernel runs inside another), so for its operators self ==
               total; a framework's operator scopes nest (kernels'
               ``total_ns``: the scope with what it called, ``dur_ns``: its
               self time), and for them total counts the operators they
               called.  For a scope prefix self counts the operators
               directly in that scope and total the whole subtree.
``mean_ns``, ``p50_ns``, ``p99_ns``, ``min_ns``, ``max_ns``
               per-kernel duration statistics; percentiles interpolate
               linearly between the two nearest kernels (numpy's default).
``share``      total_ns / all kernel time of the same rank(s).  Kernels on
               different streams can overlap, so shares can sum above 1.
``step_share`` time of the row's kernels inside steps / total step time of
               the same rank(s): the fraction of wall step time spent in it.
``per_step_ns`` time of the row's kernels inside steps / steps, per rank.
``gflops``     achieved GFLOP/s: FLOPs per call / mean duration in ns
               (1 FLOP/ns == 1 GFLOP/s).  NaN when the operator has no FLOPs.
``gbps``       achieved GB/s: bytes per call / mean duration in ns.
``cpu_wait_ns`` the part of ``total_ns`` in which the thread running the
               kernel was runnable but waited for a CPU another thread or
               process held (``cpu_waits``, eBPF only; 0 without it): time
               the kernel lasted that was not its work.
``blocked_ns`` the part of ``total_ns`` in which that thread slept, waiting
               on a lock, the GIL or I/O (``blocked``, eBPF only): the
               kernel's time on a CPU is ``total_ns - cpu_wait_ns -
               blocked_ns`` (less the wake-up latency of idle CPUs).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis import memo
from msprof.analysis.groupstats import Groups, first_rows
from msprof.analysis.intervals import Windows, covered, segments

OP_KEYS = ["op_id", "name", "type", "scope"]
_OP_COLS = ["name", "type", "scope", "flops", "bytes"]


def _lookup(rank: np.ndarray, op_id: np.ndarray, ops: pd.DataFrame) -> dict:
    """The operator columns of each (rank, op_id) pair (see :func:`with_ops`)."""
    meta = ops[["rank", "op_id", "name", "type", "scope", "flops", "bytes"]]
    meta = meta.drop_duplicates(["rank", "op_id"], keep="last").reset_index(drop=True)
    keys = pd.MultiIndex.from_arrays([meta["rank"].astype("int64"), meta["op_id"].astype("int64")])
    pos = keys.get_indexer(pd.MultiIndex.from_arrays([rank, op_id]))
    miss = pos < 0
    if miss.any() and len(meta):        # an empty ops table has no other rank to look in
        anyrank = meta.drop_duplicates("op_id", keep="last")
        alt = pd.Index(anyrank["op_id"].astype("int64")).get_indexer(op_id[miss])
        pos[miss] = np.where(alt >= 0, anyrank.index.to_numpy()[np.maximum(alt, 0)], -1)
    found = pos >= 0
    take = np.maximum(pos, 0)
    out = {}
    for col, empty in (("name", None), ("type", "?"), ("scope", "")):
        v = meta[col].to_numpy(dtype=object)[take] if len(meta) else np.full(len(pos), None, object)
        if empty is None:
            # "op<id>" only where no operator was registered.
            v = v.copy()
            v[~found] = ["op" + str(o) for o in op_id[~found]]
        else:
            v = np.where(found, v, empty)
        out[col] = v
    for col in ("flops", "bytes"):
        v = meta[col].to_numpy(dtype="int64")[take] if len(meta) else np.zeros(len(pos), "int64")
        out[col] = np.where(found, v, 0).astype("int64")
    return out


def _pairs(rank: np.ndarray, op_id: np.ndarray):
    """A code per row for its (rank, op_id) pair, and the pairs."""
    if len(rank) and -2**31 <= op_id.min() and op_id.max() < 2**31 \
            and -2**31 <= rank.min() and rank.max() < 2**31:
        # Both fit in 32 bits (always, in practice): one int64 key, hashed once.
        codes, uniq = pd.factorize((rank << 32) + (op_id + 2**31))
        return codes, uniq >> 32, (uniq & 0xFFFFFFFF) - 2**31
    codes, uniq = pd.MultiIndex.from_arrays([rank, op_id]).factorize()
    return codes, uniq.get_level_values(0).to_numpy(), uniq.get_level_values(1).to_numpy()


def operators(kernels: pd.DataFrame, ops: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """``(codes, table)``: one row of ``table`` per distinct operator the
    kernels ran (columns ``rank``, ``op_id``, ``name``, ``type``, ``scope``,
    ``flops``, ``bytes``, joined as :func:`with_ops` joins them), and for
    each kernel the row of its operator.  The analyses aggregate per
    operator first and look names up in ``table``: no string column the
    length of the kernels table.  Kept per profile table (:mod:`memo`)."""
    if set(_OP_COLS) <= set(kernels.columns):
        # Joined already: the operator is what each row carries.
        cols = ["rank", "op_id"] + _OP_COLS
        codes = kernels.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
        table = kernels[cols].take(first_rows(codes, codes.max() + 1 if len(codes) else 0))
        return codes, table.reset_index(drop=True)
    return memo.once("operators", (kernels, ops), lambda: _operators(kernels, ops))


def _operators(kernels, ops):
    rank, op_id = kernels["rank"].to_numpy(dtype="int64"), kernels["op_id"].to_numpy(dtype="int64")
    codes, pr, po = _pairs(rank, op_id)
    table = pd.DataFrame({"rank": pr.astype(kernels["rank"].dtype),
                          "op_id": po.astype(kernels["op_id"].dtype), **_lookup(pr, po, ops)})
    return codes.astype(np.intp), table


def with_ops(kernels: pd.DataFrame, ops: pd.DataFrame) -> pd.DataFrame:
    """Kernels with their operator's ``name``, ``type``, ``scope``, ``flops``
    and ``bytes`` (joined on rank and op_id; operators registered without a
    rank, or by another rank only, match on op_id alone).  Kernels that
    carry those columns already are returned as they are."""
    if set(_OP_COLS) <= set(kernels.columns):
        return kernels
    codes, table = operators(kernels, ops)
    k = kernels.copy()
    for col in _OP_COLS:
        k[col] = table[col].to_numpy()[codes]
    return k


def _select(df: pd.DataFrame, rank: int | None) -> pd.DataFrame:
    return df if rank is None else df[df["rank"] == rank]


def prepared(kernels: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """The kernels as the functions here take them, for callers that reuse
    them: the table itself.  What the functions derive from it (each
    kernel's operator, whether it started inside a step) is computed once
    per profile table and kept (:func:`operators`, :func:`in_step`)."""
    return kernels


def in_step(kernels: pd.DataFrame, steps: pd.DataFrame) -> np.ndarray:
    """Whether each kernel ran (started) inside a step window of its rank
    (the column ``in_step_ns`` when the kernels carry it).  Kept per
    profile table."""
    if "in_step_ns" in kernels.columns:
        return kernels["in_step_ns"].to_numpy() != 0
    return memo.once("in_step", (kernels, steps), lambda: _in_step(kernels, steps))


def _in_step(kernels: pd.DataFrame, steps: pd.DataFrame) -> np.ndarray:
    if kernels.empty or steps.empty:
        return np.zeros(len(kernels), dtype=bool)
    win = Windows(steps)
    start = kernels["start_ns"].to_numpy(dtype="int64")
    w = win.holding(kernels["rank"].to_numpy(), start)
    out = w >= 0
    out[out] = start[out] < win.end[w[out]]
    return out


def _thread(df: pd.DataFrame) -> np.ndarray:
    return ((df["rank"].to_numpy(dtype="int64") << 32)
            | (df["tid"].to_numpy(dtype="int64") & 0xFFFFFFFF))


def thread_time_inside(kernels: pd.DataFrame, spans: pd.DataFrame | None) -> np.ndarray:
    """Per kernel, the time of ``spans`` (``rank``, ``tid``, ``start_ns``,
    ``dur_ns``) of its own thread that lies inside it."""
    out = np.zeros(len(kernels), dtype="int64")
    if spans is None or spans.empty or kernels.empty:
        return out
    start = spans["start_ns"].to_numpy(dtype="int64")
    segs = segments(pd.DataFrame({"rank": _thread(spans), "start_ns": start,
                                  "end_ns": start + spans["dur_ns"].to_numpy(dtype="int64")}))
    a = kernels["start_ns"].to_numpy(dtype="int64")
    return covered(segs, pd.DataFrame({"rank": _thread(kernels), "a": a,
                                       "b": a + kernels["dur_ns"].to_numpy(dtype="int64")}))


def cpu_waited(kernels: pd.DataFrame, cpu_waits: pd.DataFrame | None) -> np.ndarray:
    """Per kernel, how long its own thread waited for a busy CPU while it
    ran (waits that ended on an idle CPU are that CPU waking up: left out)."""
    if cpu_waits is None or cpu_waits.empty:
        return np.zeros(len(kernels), dtype="int64")
    return thread_time_inside(kernels, cpu_waits[~cpu_waits["idle_cpu"].to_numpy(dtype=bool)])


def op_groups(codes: np.ndarray, table: pd.DataFrame, keys: list[str], rows=None):
    """Kernels (``rows`` of them, all when None) grouped by ``keys``, the
    groups formed per operator: ``(groups, by_op, key_values)`` with
    ``by_op`` the group of each operator (-1: none of its kernels among
    ``rows``) and one row of ``keys`` per group.  Groups are numbered in the
    order their first kernel appears, as ``groupby(sort=False)`` numbers
    them."""
    by_op = table.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    n = int(by_op.max()) + 1 if len(by_op) else 0
    kc = by_op[codes if rows is None else codes[rows]]
    first = np.full(n, len(kc), dtype=np.intp)
    np.minimum.at(first, kc, np.arange(len(kc), dtype=np.intp))
    order = np.argsort(first, kind="stable")
    order = order[first[order] < len(kc)]
    renum = np.full(n, -1, dtype=np.intp)
    renum[order] = np.arange(len(order))
    key_rows = first_rows(by_op, n)[order]
    values = table[keys].take(key_rows).reset_index(drop=True)
    return Groups(renum[kc], len(order)), renum[by_op], values


def sum_per_group(by_op: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Per group, the sum of ``values`` (one per operator)."""
    out = np.zeros(n, dtype="int64")
    seen = by_op >= 0
    np.add.at(out, by_op[seen], values[seen])
    return out


def ranks_per_group(table: pd.DataFrame, by_op: np.ndarray, n: int) -> np.ndarray:
    """Per group of :func:`op_groups`, how many ranks its operators belong to."""
    return pd.Series(table["rank"].to_numpy()).groupby(by_op).nunique() \
        .reindex(range(n)).to_numpy(dtype="int64")


def kernel_time_per_rank(codes: np.ndarray, table: pd.DataFrame, dur: np.ndarray) -> pd.Series:
    """Kernel time per rank: ``dur`` (one value per row of ``codes``) summed
    per operator, then per rank."""
    per_op = Groups(codes, len(table)).sum(dur)
    return pd.Series(per_op).groupby(table["rank"].to_numpy()).sum()


def _aggregate(kernels: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame,
               keys: list[str], per_rank: bool, cpu_waits: pd.DataFrame | None = None,
               blocked: pd.DataFrame | None = None):
    """The common statistics of the kernels grouped by ``keys`` (columns of
    :func:`operators`' table); and the operators with their group."""
    codes, table = operators(kernels, ops)
    g, by_op, out = op_groups(codes, table, keys)
    dur = kernels["dur_ns"].to_numpy(dtype="int64")
    calls = Groups(codes, len(table)).size()
    out["calls"] = g.size()
    # A framework's operator scopes nest (docs/FORMAT.md): dur_ns is a
    # scope's self time, total_ns the whole scope with what it called.
    # The runtime's kernels are flat: total and self are one.
    own = dur
    self_ns = g.sum(own)
    if "total_ns" in kernels.columns:
        dur = kernels["total_ns"].to_numpy(dtype="int64")
    out["total_ns"] = g.sum(dur)
    out["mean_ns"] = out["total_ns"] / out["calls"]
    out["min_ns"] = g.min(dur)
    out["max_ns"] = g.max(dur)
    out["in_step_ns"] = g.sum(np.where(in_step(kernels, steps), dur, 0))
    # FLOPs and bytes are per operator: its calls times its count.
    out["flops_total"] = sum_per_group(by_op, len(out),
                                       calls * table["flops"].to_numpy(dtype="int64"))
    out["bytes_total"] = sum_per_group(by_op, len(out),
                                       calls * table["bytes"].to_numpy(dtype="int64"))
    out["ranks"] = ranks_per_group(table, by_op, len(out))
    out["p50_ns"], out["p99_ns"] = g.quantiles(dur, [0.5, 0.99])
    out["self_ns"] = self_ns
    out["cpu_wait_ns"] = g.sum(cpu_waited(kernels, cpu_waits))
    out["blocked_ns"] = g.sum(thread_time_inside(kernels, blocked))

    out = rates_and_shares(out, kernel_time_per_rank(codes, table, own), steps, per_rank)
    return out, (table, by_op)


def rates_and_shares(out: pd.DataFrame, kernel_time: pd.Series, steps: pd.DataFrame,
                     per_rank: bool) -> pd.DataFrame:
    """Adds ``share``, ``step_share``, ``per_step_ns``, ``gflops``, ``gbps``,
    ``flops`` and ``bytes`` to rows that carry ``calls``, ``total_ns``,
    ``in_step_ns``, ``flops_total`` and ``bytes_total`` (and ``rank`` when
    ``per_rank``); ``kernel_time`` is the kernel time per rank."""
    # Denominators: kernel and step time of the ranks each row covers.
    step_time = steps.groupby("rank")["dur_ns"].agg(["sum", "size"])
    if per_rank:
        out["share"] = out["total_ns"] / out["rank"].map(kernel_time)
        st = out["rank"].map(step_time["sum"]) if len(step_time) else np.nan
        n = out["rank"].map(step_time["size"]) if len(step_time) else np.nan
        out["step_share"] = out["in_step_ns"] / st
        out["per_step_ns"] = out["in_step_ns"] / n
    else:
        out["share"] = out["total_ns"] / kernel_time.sum()
        # Per step of one rank: the mean over every (rank, step).
        n = step_time["size"].sum() if len(step_time) else np.nan
        out["step_share"] = out["in_step_ns"] / step_time["sum"].sum() if len(step_time) else np.nan
        out["per_step_ns"] = out["in_step_ns"] / n
    mean = out["total_ns"] / out["calls"]
    out["gflops"] = (out["flops_total"] / out["calls"] / mean).where(out["flops_total"] > 0)
    out["gbps"] = (out["bytes_total"] / out["calls"] / mean).where(out["bytes_total"] > 0)
    out["flops"] = out["flops_total"] // out["calls"]
    out["bytes"] = out["bytes_total"] // out["calls"]
    return out


_ORDER = ["calls", "total_ns", "self_ns", "mean_ns", "p50_ns", "p99_ns", "min_ns",
          "max_ns", "share", "step_share", "per_step_ns", "flops", "bytes", "gflops",
          "gbps", "ranks", "cpu_wait_ns", "blocked_ns"]


def op_stats(kernels: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame,
             rank: int | None = None, per_rank: bool = False,
             cpu_waits: pd.DataFrame | None = None,
             blocked: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per operator (per rank when ``per_rank``, else aggregated over
    ranks: operators of different ranks with the same id, name, type and
    scope are one row), sorted by total time, largest first.

    Columns: ``rank`` (when per_rank), ``op_id``, ``name``, ``type``,
    ``scope`` and the statistics described in the module docstring;
    ``ranks`` is how many ranks ran the operator.
    """
    steps = _select(steps, rank)
    k = _select(kernels, rank)
    keys = (["rank"] if per_rank else []) + OP_KEYS
    out, _ = _aggregate(k, ops, steps, keys, per_rank, cpu_waits, blocked)
    return op_rows(out, keys)


def op_rows(out: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The columns of :func:`op_stats` (those ``out`` has), largest total first."""
    out = out[keys + [c for c in _ORDER if c in out]]
    return out.sort_values(["total_ns"] + keys, ascending=[False] + [True] * len(keys),
                           kind="stable").reset_index(drop=True)


def type_stats(kernels: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame,
               rank: int | None = None, per_rank: bool = False,
               cpu_waits: pd.DataFrame | None = None,
               blocked: pd.DataFrame | None = None) -> pd.DataFrame:
    """Like :func:`op_stats`, one row per operator type; ``ops`` counts the
    distinct operators of the type.  ``gflops``/``gbps`` are total FLOPs
    (bytes) over total time."""
    steps = _select(steps, rank)
    k = _select(kernels, rank)
    keys = (["rank"] if per_rank else []) + ["type"]
    out, (table, by_op) = _aggregate(k, ops, steps, keys, per_rank, cpu_waits, blocked)
    return type_rows(out, table, by_op, keys)


def type_rows(out: pd.DataFrame, table: pd.DataFrame, by_op: np.ndarray,
              keys: list[str]) -> pd.DataFrame:
    """The columns of :func:`type_stats` (those ``out`` has) from rows
    grouped per type, ``by_op`` the row of each operator of ``table``."""
    out["ops"] = pd.Series(table["name"].to_numpy()).groupby(by_op).nunique() \
        .reindex(range(len(out))).to_numpy(dtype="int64")
    out["gflops"] = (out["flops_total"] / out["total_ns"]).where(out["flops_total"] > 0)
    out["gbps"] = (out["bytes_total"] / out["total_ns"]).where(out["bytes_total"] > 0)
    cols = keys + ["ops"] + [c for c in _ORDER if c not in ("flops", "bytes") and c in out]
    return out[cols].sort_values(["total_ns"] + keys, ascending=[False] + [True] * len(keys),
                                 kind="stable").reset_index(drop=True)


def scope_path(scope: pd.Series, name: pd.Series) -> pd.Series:
    """The cell path of each operator: its scope, without a trailing
    component equal to the operator's own name (writers differ on whether
    the scope includes it), and without leading/trailing slashes.  Loops
    over the given rows: pass one row per operator, not per kernel."""
    s = scope.fillna("").astype(str).str.strip("/")
    tail = "/" + name.astype(str)
    ends = np.array([a.endswith(b) or a == b[1:] for a, b in zip(s, tail)], dtype=bool)
    cut = s.str.len() - tail.str.len()
    trimmed = [a[: max(c, 0)] for a, c in zip(s[ends], cut[ends])]
    s = s.copy()
    s[ends] = trimmed
    return s


def scope_stats(kernels: pd.DataFrame, ops: pd.DataFrame, rank: int | None = None,
                per_rank: bool = False, depth: int | None = None) -> pd.DataFrame:
    """One row per scope prefix (``net``, ``net/layer1``, ...): ``self_ns``
    and ``self_calls`` count kernels of operators whose scope is exactly
    the prefix; ``total_ns`` and ``calls`` those of its whole subtree.
    Operators with no scope sit under ``""`` (the root).  ``depth`` is the
    number of components (0 for the root); rows deeper than ``depth`` are
    dropped when it is given.  ``share`` is total_ns / all kernel time.
    Sorted by path so that a subtree follows its root.
    """
    k = _select(kernels, rank)
    keys = (["rank"] if per_rank else [])
    codes, table = operators(k, ops)
    g, _, per_op = op_groups(codes, table, keys + ["scope", "name"])
    dur = k["dur_ns"].to_numpy(dtype="int64")
    per_op["self_calls"] = g.size()
    per_op["self_ns"] = g.sum(dur)
    # One sum is enough when ranks are merged (grouping per rank costs a pass).
    kernel_time = kernel_time_per_rank(codes, table, dur) if per_rank else pd.Series([dur.sum()])
    return scope_rows(per_op, keys, kernel_time, per_rank, depth)


def scope_rows(per_op: pd.DataFrame, keys: list[str], kernel_time: pd.Series,
               per_rank: bool, depth: int | None) -> pd.DataFrame:
    """The rows of :func:`scope_stats` from one row per operator (``keys``,
    ``scope``, ``name``, ``self_calls``, ``self_ns``); ``kernel_time`` is
    the kernel time per rank."""
    per_op = per_op.copy()
    per_op["path"] = scope_path(per_op["scope"], per_op["name"])
    per_op = per_op.groupby(keys + ["path"], sort=False)[["self_calls", "self_ns"]].sum().reset_index()
    # Expand each distinct path into its prefixes (a loop per distinct scope,
    # not per event).
    paths = per_op["path"].unique()
    prefixes = {p: [""] + ["/".join(p.split("/")[: i + 1]) for i in range(p.count("/") + 1)]
                if p else [""] for p in paths}
    per_op["prefix"] = per_op["path"].map(prefixes)
    tree = per_op.explode("prefix")
    total = tree.groupby(keys + ["prefix"], sort=False).agg(
        calls=("self_calls", "sum"), total_ns=("self_ns", "sum")).reset_index()
    own = per_op.drop(columns="prefix").rename(columns={"path": "prefix"})[keys + ["prefix", "self_calls", "self_ns"]]
    out = total.merge(own, on=keys + ["prefix"], how="left")
    out[["self_calls", "self_ns"]] = out[["self_calls", "self_ns"]].fillna(0).astype("int64")
    out = out.rename(columns={"prefix": "scope"})
    out["depth"] = np.where(out["scope"] == "", 0, out["scope"].str.count("/") + 1)
    if per_rank:
        out["share"] = out["total_ns"] / out["rank"].map(kernel_time)
    else:
        out["share"] = out["total_ns"] / kernel_time.sum()
    if depth is not None:
        out = out[out["depth"] <= depth]
    cols = keys + ["scope", "depth", "calls", "total_ns", "self_calls", "self_ns", "share"]
    return out[cols].sort_values(keys + ["scope"], kind="stable").reset_index(drop=True)
