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
``self_ns``    time in the row's own kernels.  A kernel is flat (no kernel
               runs inside another), so for an operator self == total; for a
               scope prefix self counts the operators directly in that scope
               and total the whole subtree.
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
"""
from __future__ import annotations

import numpy as np
import pandas as pd

OP_KEYS = ["op_id", "name", "type", "scope"]


def with_ops(kernels: pd.DataFrame, ops: pd.DataFrame) -> pd.DataFrame:
    """Kernels with their operator's ``name``, ``type``, ``scope``, ``flops``
    and ``bytes`` (joined on rank and op_id; operators registered without a
    rank, or by another rank only, match on op_id alone).  Kernels that
    carry those columns already are returned as they are."""
    if {"name", "type", "scope", "flops", "bytes"} <= set(kernels.columns):
        return kernels
    meta = ops[["rank", "op_id", "name", "type", "scope", "flops", "bytes"]]
    meta = meta.drop_duplicates(["rank", "op_id"], keep="last").reset_index(drop=True)
    # Positions into ``meta`` by integer lookups (no string-column merge of
    # the big table).
    keys = pd.MultiIndex.from_arrays([meta["rank"].astype("int64"), meta["op_id"].astype("int64")])
    pos = keys.get_indexer(pd.MultiIndex.from_arrays(
        [kernels["rank"].astype("int64"), kernels["op_id"].astype("int64")]))
    miss = pos < 0
    if miss.any():
        anyrank = meta.drop_duplicates("op_id", keep="last")
        alt = pd.Index(anyrank["op_id"].astype("int64")).get_indexer(
            kernels["op_id"].to_numpy()[miss].astype("int64"))
        pos[miss] = np.where(alt >= 0, anyrank.index.to_numpy()[np.maximum(alt, 0)], -1)
    found = pos >= 0
    take = np.maximum(pos, 0)
    k = kernels.copy()
    for col, empty in (("name", None), ("type", "?"), ("scope", "")):
        v = meta[col].to_numpy(dtype=object)[take] if len(meta) else np.full(len(k), None, object)
        if empty is None:
            v = np.where(found, v, "op" + kernels["op_id"].astype(str).to_numpy(dtype=object))
        else:
            v = np.where(found, v, empty)
        k[col] = v
    for col in ("flops", "bytes"):
        v = meta[col].to_numpy(dtype="int64")[take] if len(meta) else np.zeros(len(k), "int64")
        k[col] = np.where(found, v, 0).astype("int64")
    return k


def _select(df: pd.DataFrame, rank: int | None) -> pd.DataFrame:
    return df if rank is None else df[df["rank"] == rank]


def prepared(kernels: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Kernels with their operator columns and ``in_step_ns`` (duration when
    the kernel started inside a step of its rank, else 0): what the
    functions here compute first, for callers that reuse it."""
    return _prepare(kernels, ops, steps, None)


def _in_step(kernels: pd.DataFrame, steps: pd.DataFrame) -> pd.Series:
    """Whether each kernel ran (started) inside a step window of its rank."""
    if kernels.empty or steps.empty:
        return pd.Series(False, index=kernels.index)
    w = steps[["rank", "start_ns", "dur_ns"]].rename(columns={"start_ns": "w0", "dur_ns": "wn"})
    w = w.sort_values("w0", kind="stable")
    k = kernels[["rank", "start_ns"]].assign(_i=np.arange(len(kernels)))
    m = pd.merge_asof(k.sort_values("start_ns", kind="stable"), w,
                      left_on="start_ns", right_on="w0", by="rank", direction="backward")
    inside = m["w0"].notna() & (m["start_ns"] < m["w0"] + m["wn"])
    out = np.zeros(len(kernels), dtype=bool)
    out[m["_i"].to_numpy()] = inside.to_numpy()
    return pd.Series(out, index=kernels.index)


def _aggregate(k: pd.DataFrame, keys: list[str], steps: pd.DataFrame,
               per_rank: bool) -> pd.DataFrame:
    """The common statistics of ``k`` (kernels with op columns and
    ``in_step_ns``) grouped by ``keys``."""
    g = k.groupby(keys, sort=False, dropna=False)
    out = g.agg(
        calls=("dur_ns", "size"),
        total_ns=("dur_ns", "sum"),
        mean_ns=("dur_ns", "mean"),
        min_ns=("dur_ns", "min"),
        max_ns=("dur_ns", "max"),
        in_step_ns=("in_step_ns", "sum"),
        flops_total=("flops", "sum"),
        bytes_total=("bytes", "sum"),
        ranks=("rank", "nunique"),
    )
    out["p50_ns"] = g["dur_ns"].quantile(0.5)
    out["p99_ns"] = g["dur_ns"].quantile(0.99)
    out["self_ns"] = out["total_ns"]
    out = out.reset_index()

    # Denominators: kernel and step time of the ranks each row covers.
    kernel_time = k.groupby("rank")["dur_ns"].sum()
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
          "gbps", "ranks"]


def _prepare(kernels, ops, steps, rank):
    k = with_ops(_select(kernels, rank), ops)
    if "in_step_ns" in k.columns:
        return k
    inside = _in_step(k, _select(steps, rank))
    return k.assign(in_step_ns=k["dur_ns"].where(inside, 0))


def op_stats(kernels: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame,
             rank: int | None = None, per_rank: bool = False) -> pd.DataFrame:
    """One row per operator (per rank when ``per_rank``, else aggregated over
    ranks: operators of different ranks with the same id, name, type and
    scope are one row), sorted by total time, largest first.

    Columns: ``rank`` (when per_rank), ``op_id``, ``name``, ``type``,
    ``scope`` and the statistics described in the module docstring;
    ``ranks`` is how many ranks ran the operator.
    """
    steps = _select(steps, rank)
    k = _prepare(kernels, ops, steps, rank)
    keys = (["rank"] if per_rank else []) + OP_KEYS
    out = _aggregate(k, keys, steps, per_rank)
    out = out[keys + _ORDER]
    return out.sort_values(["total_ns"] + keys, ascending=[False] + [True] * len(keys),
                           kind="stable").reset_index(drop=True)


def type_stats(kernels: pd.DataFrame, ops: pd.DataFrame, steps: pd.DataFrame,
               rank: int | None = None, per_rank: bool = False) -> pd.DataFrame:
    """Like :func:`op_stats`, one row per operator type; ``ops`` counts the
    distinct operators of the type.  ``gflops``/``gbps`` are total FLOPs
    (bytes) over total time."""
    steps = _select(steps, rank)
    k = _prepare(kernels, ops, steps, rank)
    keys = (["rank"] if per_rank else []) + ["type"]
    out = _aggregate(k, keys, steps, per_rank)
    n_ops = k.groupby(keys, sort=False)["name"].nunique().rename("ops").reset_index()
    out = out.merge(n_ops, on=keys, how="left")
    out["gflops"] = (out["flops_total"] / out["total_ns"]).where(out["flops_total"] > 0)
    out["gbps"] = (out["bytes_total"] / out["total_ns"]).where(out["bytes_total"] > 0)
    cols = keys + ["ops"] + [c for c in _ORDER if c not in ("flops", "bytes")]
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
    k = with_ops(_select(kernels, rank), ops)
    keys = (["rank"] if per_rank else [])
    per_op = k.groupby(keys + ["scope", "name"], sort=False).agg(
        self_calls=("dur_ns", "size"), self_ns=("dur_ns", "sum")).reset_index()
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
        out["share"] = out["total_ns"] / out["rank"].map(k.groupby("rank")["dur_ns"].sum())
    else:
        out["share"] = out["total_ns"] / k["dur_ns"].sum()
    if depth is not None:
        out = out[out["depth"] <= depth]
    cols = keys + ["scope", "depth", "calls", "total_ns", "self_calls", "self_ns", "share"]
    return out[cols].sort_values(keys + ["scope"], kind="stable").reset_index(drop=True)
