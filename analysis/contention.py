"""Who held the cores a rank's compute threads waited for.

Each record of the ``cpu_waits`` table names the process that was running
on the CPU when the waiting thread got it (``holder_pid``): the last of the
competitors it waited behind.  Summed per rank, it says what the machine is
oversubscribed with: the rank's own other threads (too many busy threads
per rank), other ranks (more ranks than cores), msprof's collector, or some
other process.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from msprof.analysis.comm import COMM_STREAM


def _thread_key(df: pd.DataFrame) -> np.ndarray:
    return ((df["rank"].to_numpy(dtype="int64") << 32)
            | (df["tid"].to_numpy(dtype="int64") & 0xFFFFFFFF))


def holders(cpu_waits: pd.DataFrame, kernels: pd.DataFrame, steps: pd.DataFrame,
            meta: dict) -> pd.DataFrame:
    """Per rank and holder: ``holder`` (``own threads``, ``rank N``,
    ``msprof collector`` or ``pid N``), ``holder_pid``, ``waits``,
    ``wait_ns`` (the compute threads' waits for a busy CPU it ended),
    ``per_step_ns`` and ``share`` (of the rank's waits); largest first per
    rank."""
    cols = ["rank", "holder", "holder_pid", "waits", "wait_ns", "per_step_ns", "share"]
    if cpu_waits.empty or kernels.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    w = cpu_waits[~cpu_waits["idle_cpu"].to_numpy(dtype=bool)]
    comp = kernels[kernels["stream"] != COMM_STREAM]
    w = w[np.isin(_thread_key(w), np.unique(_thread_key(comp)))]
    if w.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    g = w.groupby(["rank", "pid", "holder_pid"]).agg(
        waits=("dur_ns", "size"), wait_ns=("dur_ns", "sum")).reset_index()
    rank_of = {int(r["pid"]): int(r["rank"]) for r in meta.get("ranks") or []
               if isinstance(r, dict) and "pid" in r and "rank" in r}
    collector = meta.get("collector_pid")

    def label(pid: int, holder: int) -> str:
        if holder == pid:
            return "own threads"
        if holder in rank_of:
            return f"rank {rank_of[holder]}"
        if holder == collector:
            return "msprof collector"
        return f"pid {holder}"

    g["holder"] = [label(int(p), int(h)) for p, h in zip(g["pid"], g["holder_pid"])]
    n_steps = steps.groupby("rank").size()
    g["per_step_ns"] = g["wait_ns"] / g["rank"].map(n_steps).fillna(1).clip(lower=1)
    g["share"] = g["wait_ns"] / g.groupby("rank")["wait_ns"].transform("sum")
    g = g.sort_values(["rank", "wait_ns"], ascending=[True, False], kind="stable")
    return g[cols].reset_index(drop=True)


def compute_cpus(cpu_time: pd.DataFrame, kernels: pd.DataFrame) -> pd.DataFrame:
    """Where each rank's compute ran: per rank and CPU, ``ns`` (the time its
    compute threads ran there, over the run) and ``share`` (of the rank's
    compute threads' time on any CPU); largest first per rank.  Ranks on
    one machine each on their own cores run at those cores' speed: on a
    VM, or beside other busy processes, the same kernels can take a third
    longer on one core than on another."""
    cols = ["rank", "cpu", "ns", "share"]
    if cpu_time.empty or kernels.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    comp = kernels[kernels["stream"] != COMM_STREAM]
    t = cpu_time[np.isin(_thread_key(cpu_time), np.unique(_thread_key(comp)))]
    g = t.groupby(["rank", "cpu"], as_index=False)["ns"].sum()
    g["share"] = g["ns"] / g.groupby("rank")["ns"].transform("sum").clip(lower=1)
    g = g.sort_values(["rank", "ns"], ascending=[True, False], kind="stable")
    return g[cols].reset_index(drop=True)


def cores_apart(cpus: pd.DataFrame, rank: int, others: list[int], meta: dict,
                least: float = 0.9) -> bool:
    """Whether ``rank``'s compute ran (``least`` of its time or more) on CPUs
    where the compute of the other ranks of its machine spent under a
    tenth of theirs: then its cores, not its work, may make it slower."""
    host = {int(r["rank"]): r.get("host") for r in meta.get("ranks") or []
            if isinstance(r, dict) and "rank" in r}
    peers = [o for o in others if host.get(o) == host.get(rank)]
    mine = cpus[cpus["rank"] == rank]
    if mine.empty or not peers:
        return False
    theirs = cpus[cpus["rank"].isin(peers)].groupby("cpu")["ns"].sum()
    theirs = theirs / max(theirs.sum(), 1)
    apart = mine["cpu"].map(theirs).fillna(0.0) < 0.1
    return bool(mine.loc[apart.to_numpy(), "share"].sum() >= least)
