"""The ranked list of bottlenecks ``msprof report`` ends with.

A finding is a dict with the keys of the report contract (DESIGN.md):

``kind``       short identifier (``host_bound``, ``dominant_op``, ...)
``ranks``      ranks it concerns (list of int)
``ops``        operator names it concerns, most relevant first
``impact_ns``  expected gain per step (ns) of fixing it; for an ``info``
               finding an upper bound
``message``    one sentence with the evidence

and three more: ``severity`` (``error``: the data itself is suspect, or
the run is broken (a memory leak); ``warning``: a bottleneck; ``info``:
worth knowing, not a fault), ``evidence`` (the numbers behind the
message) and ``recommendation`` (what to try).  Each ``impact_ns`` is a
what-if computed from the profile (the step time the fix would save).  The list is ordered by
severity, then impact, largest first.  Each detector is a pure function of
DataFrames and returns a list; thresholds are the module constants below.
"""
from __future__ import annotations

import pandas as pd

from msprof.analysis import between_steps as _between
from msprof.analysis import contention as _contention
from msprof.analysis import hostbound as _hostbound
from msprof.analysis import idle_causes as _idle_causes
from msprof.analysis import memory_steps as _memory_steps
from msprof.analysis.chunks import partial_note
from msprof.analysis.units import fmt_bytes, fmt_ns, fmt_ranks, fmt_rate

HOST_BOUND_FRAC = 0.10   # host/launch gaps above this share of the step
IDLE_FRAC = 0.30         # idle above this share of the step
IMBALANCE_FRAC = 0.10    # slowest rank's compute above the others' median by this share of the step
CPU_WAIT_FRAC = 0.10     # compute threads waiting for a CPU above this share of the step
SHARED_CORE_MAX = 0.50   # a contended rank's kernels longer on a CPU than the others' by at
                         # most this share are the shared core's doing (caches others emptied:
                         # +25 % measured beside a process that only spun); beyond it, more
                         # work (a rank with twice the batch was called contended at +81 %)
EXPOSED_COMM_FRAC = 0.10  # exposed transfer time above this share of the step
BUBBLE_FRAC = 0.10       # pipeline bubble above this share of the step (GPipe, M = 8: 11 %)
TINY_SHARE = 0.5         # more than this share of kernels shorter than their launch cost
TINY_OPS_MIN = 16        # tiny kernels per step of one group before they make a finding
DOMINANT_SHARE = 0.50    # one operator above this share of kernel time
INPUT_BOUND_FRAC = 0.10  # time between steps above this share of the iteration
GRAPH_CACHE_FRAC = 0.75  # a newly compiled graph ran in this share of the steps or more
IMPACT_FLOOR = 0.03      # a bottleneck whose what-if saves less than this share of the
                         # step is not a warning (an info at most): nothing to act on
TOP_OPS = 3

_SEVERITY = {"error": 0, "warning": 1, "info": 2}


def _finding(kind, severity, ranks, ops, impact_ns, message, recommendation="",
             **evidence) -> dict:
    return {
        "kind": kind, "severity": severity,
        "ranks": sorted(int(r) for r in ranks), "ops": list(ops),
        "impact_ns": int(round(impact_ns)), "message": message,
        "recommendation": recommendation,
        "evidence": {k: _plain(v) for k, v in evidence.items()},
    }


def _plain(v):
    """numpy scalars to Python ones, so a finding serialises as JSON."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v.item() if hasattr(v, "item") else v


def _pct(part, whole) -> str:
    return f"{part / whole:.0%}" if whole else "?"


def data_quality(meta: dict) -> list[dict]:
    """Lost events, an unfinished profile, failed ranks."""
    out = []
    lost = int(meta.get("lost_events") or 0)
    if lost > 0:
        events = int(meta.get("events") or 0)
        causes = meta.get("lost_by_cause") or {}
        why = ", ".join(f"{c}: {n}" for c, n in causes.items() if n) or "cause not recorded"
        share = f" ({lost / (lost + events):.1%} of all)" if events else ""
        out.append(_finding(
            "lost_events", "error", [], [], 0,
            f"{lost} events were lost{share} ({why}); counts and times undercount",
            lost_events=lost, lost_by_cause=causes))
    if meta.get("complete") is False:
        out.append(_finding(
            "incomplete", "error", [], [], 0,
            f"the profile was not closed cleanly ({partial_note(meta)}); its last "
            "events are missing"))
    failed = meta.get("failed_ranks") or []
    if failed:
        ranks = [f.get("rank", -1) for f in failed if isinstance(f, dict)]
        codes = sorted({f.get("exit_status") for f in failed if isinstance(f, dict)} - {None})
        out.append(_finding(
            "failed_ranks", "error", ranks, [], 0,
            f"{fmt_ranks(ranks)} exited with status {', '.join(map(str, codes)) or '?'}"))
    return out


def host_bound(devices: pd.DataFrame, gaps: pd.DataFrame, names: dict,
               host: pd.DataFrame | None = None, framework: str | None = None) -> list[dict]:
    """Ranks whose device waited on the host for a large share of the step.

    ``gaps`` from :func:`msprof.analysis.breakdown.gaps`; ``names`` maps
    (rank, op_id) to operator names.  The operators named are those whose
    kernels most often ended such a wait (launched late).  PyTorch on a CPU
    (``framework`` "torch") has no device: its host gaps are Python between
    operators, and the finding says so in those words."""
    hit = devices[devices["host_gap_frac"] >= HOST_BOUND_FRAC]
    if hit.empty:
        return []
    g = gaps[gaps["rank"].isin(hit["rank"]) & (gaps["host_ns"] > 0)]
    by_op = g.groupby(["rank", "next_op_id"])["host_ns"].sum().reset_index()
    by_op["name"] = [names.get((r, o), f"op{o}") for r, o in zip(by_op["rank"], by_op["next_op_id"])]
    top = by_op.groupby("name")["host_ns"].sum().sort_values(ascending=False, kind="stable")
    ops = list(top.index[:TOP_OPS])
    worst = hit.loc[hit["host_gap_ns"].idxmax()]
    before = f"; longest before {', '.join(ops)}" if ops else ""
    torch = framework == "torch"
    tiny = ""
    if host is not None and len(host) and host["kernels"].sum():
        h = host[host["rank"].isin(hit["rank"])]
        share = h["tiny"].sum() / max(h["kernels"].sum(), 1)
        cost = fmt_ns(h["launch_cost_ns"].median())
        if share >= TINY_SHARE:
            tiny = (f"; {share:.0%} of operators ran shorter than the {cost} from one "
                    f"operator's start to the next's (dispatch, not work)" if torch else
                    f"; {share:.0%} of kernels are shorter than the {cost} it takes to "
                    f"launch one")
    gap, frac = fmt_ns(worst["host_gap_ns"]), f"{worst['host_gap_frac']:.0%}"
    if torch:
        return [_finding(
            "host_bound", "warning", hit["rank"], ops, worst["host_gap_ns"],
            f"{fmt_ranks(hit['rank'])} host-bound: Python between operators took {frac} of "
            f"each step ({gap}/step){before}{tiny}; without it: -{gap}/step (-{frac})",
            "issue fewer, larger operators (a bigger batch, torch.compile, tensor code "
            "instead of Python loops) and keep Python work (logging, .item(), data "
            "preparation) out of the step",
            host_gap_frac=float(worst["host_gap_frac"]))]
    return [_finding(
        "host_bound", "warning", hit["rank"], ops, worst["host_gap_ns"],
        f"{fmt_ranks(hit['rank'])} host-bound: the device had nothing queued for "
        f"{frac} of each step ({gap}/step){before}{tiny}; removing the launch gaps: "
        f"-{gap}/step (-{frac})",
        "fuse the small operators or batch more work per kernel, and move host work "
        "(data loading, Python per step) off the launch path",
        host_gap_frac=float(worst["host_gap_frac"]))]


def tiny_ops(tiny: pd.DataFrame, devices: pd.DataFrame,
             cost: pd.Series | None = None) -> list[dict]:
    """A group of tiny operators (same scope and type; operators whose
    median kernel is shorter than it takes to launch one, or all of the
    group where its median kernel is) holding the device for
    a large share of the step: launch and dispatch overhead, no work.
    ``tiny`` from :func:`msprof.analysis.hostbound.tiny_time`; ``devices``
    from :func:`typical_steps`.  Per rank and group, the typical step's
    (median) held time; groups of fewer than :data:`TINY_OPS_MIN` kernels
    per step are left to the host-gap finding (a few launches are a few
    launches).  What-if: fusing the group (one kernel instead of a run)
    gives its held time back, and its gradient's (the group of the same
    type in ``Gradients/<scope>``, where it has one)."""
    if tiny.empty or devices.empty:
        return []
    steps = devices.set_index("rank")["steps"]
    step_ns = devices.set_index("rank")["step_ns"]
    rows = []
    for (r, scope, kind), g in tiny.groupby(["rank", "scope", "type"], sort=False):
        n = int(steps.get(r, g["step"].nunique()))
        per = g.groupby("step")[["held_ns", "kernels", "starved_ns"]].sum()
        rows.append({"rank": r, "scope": scope, "type": kind,
                     "held": _median_over(per["held_ns"], n),
                     "starved": _median_over(per["starved_ns"], n),
                     "kernels": _median_over(per["kernels"], n), "ops": int(g["ops"].max()),
                     "names": g["names"].iloc[0]})
    grp = pd.DataFrame(rows)
    grp = grp[grp["kernels"] >= TINY_OPS_MIN]
    if grp.empty:
        return []
    grp["frac"] = grp["held"] / grp["rank"].map(step_ns).to_numpy()
    hit = grp[grp["frac"] >= HOST_BOUND_FRAC]
    if hit.empty:
        return []
    top = hit.loc[hit["held"].idxmax()]
    same = hit[(hit["scope"] == top["scope"]) & (hit["type"] == top["type"])]
    worst, gain = int(top["rank"]), float(top["held"])
    # fusing the operators fuses their gradient too (or, for a gradient's
    # group, the forward operators it comes from): the group of the same
    # type in the partner scope of the same rank is given back with it (a
    # chain of 400 reshapes: 400 more in Gradients/...)
    g_prefix = "Gradients/"
    partner = (top["scope"][len(g_prefix):] if top["scope"].startswith(g_prefix)
               else g_prefix + top["scope"])
    grad = grp[(grp["rank"] == worst) & (grp["type"] == top["type"])
               & (grp["scope"] == partner)]
    grad_held = float(grad["held"].sum())
    gain += grad_held
    where = f" in {top['scope']}" if top["scope"] else ""
    launch = (f" shorter than the {fmt_ns(cost[worst])} it takes to launch one"
              if cost is not None and worst in cost.index else " shorter than their launch")
    return [_finding(
        "tiny_ops", "warning", same["rank"], top["names"][:TOP_OPS], gain,
        f"{fmt_ranks(same['rank'])} host-bound on tiny operators: {top['kernels']:,.0f} "
        f"{top['type']} kernels per step{where} ({top['ops']:,} operators), each{launch}, "
        f"hold the device {fmt_ns(top['held'])}/step ({top['frac']:.0%} of the step on rank {worst}) "
        f"in launch and dispatch overhead"
        + (f" (of it {fmt_ns(top['starved'])} idle while the host launched them)"
           if top["starved"] >= 0.05 * gain else "")
        + (f"; {fmt_ns(grad_held)}/step more in their "
           f"{'forward' if partner in top['scope'] else 'gradient'} "
           f"({grad['kernels'].sum():,.0f} kernels in {partner})" if grad_held else "")
        + f"; fusing them: -{fmt_ns(gain)}/step",
        "fuse the small operators (or drop them), or batch their work into fewer kernels",
        scope=top["scope"], type=top["type"], kernels_per_step=float(top["kernels"]),
        operators=int(top["ops"]), rank=worst, share=float(top["frac"]),
        starved_ns=float(top["starved"]))]


def _median_over(per_step: pd.Series, steps: int) -> float:
    """Median per step of a per-step sum, steps without any counting 0."""
    vals = list(per_step.to_numpy()) + [0] * max(steps - len(per_step), 0)
    return float(pd.Series(vals, dtype="float64").median()) if vals else 0.0


def host_per_op(causes: pd.DataFrame, devices: pd.DataFrame,
                explained: pd.Series | None = None) -> list[dict]:
    """Host-bound runs of small operators: issuing and dispatching each
    operator (the gaps before its kernel, empty queue or a launched kernel
    waiting for the executor, but for the executor's waits for a CPU,
    which are the machine's) costs more than the kernel itself, and adds
    up to a large share of the step, whatever the kernels' absolute size.
    ``causes`` from :func:`msprof.analysis.idle_causes.idle_causes`;
    ``explained`` (ns per step, by rank) is accounted for by a more specific
    finding (a group of tiny operators) and left out.  What-if: that
    per-operator cost gone (fewer, larger operators) saves it."""
    if causes.empty or devices.empty:
        return []
    c = causes.merge(devices[["rank", "step_ns"]], on="rank")
    # the executor's thread waiting for a CPU other processes held is the
    # machine's (CPU contention), not a cost of issuing operators; behind
    # the rank's own threads (the host launching on the same cores) it is
    own_wait = c["queued_own_wait_ns"] if "queued_own_wait_ns" in c else 0.0
    over = c["host_ns"] + c["queued_ns"] - c["queued_cpu_wait_ns"] + own_wait
    if explained is not None and len(explained):
        over = (over - c["rank"].map(explained).fillna(0)).clip(lower=0)
    c = c.assign(over=over, per_op=(over / c["kernels"]).where(c["kernels"] > 0, 0.0))
    hit = c[(c["per_op"] > c["kernel_p50_ns"]) & (c["over"] >= HOST_BOUND_FRAC * c["step_ns"])]
    if hit.empty:
        return []
    w = hit.loc[hit["over"].idxmax()]
    parts = [(w["host_ns"], "empty queue (the host had not launched the next kernel)"),
             (w["dispatch_ns"], "a launched kernel waiting for the executor to start it"),
             (w.get("queued_own_wait_ns", 0.0), "the executor's thread waiting for a CPU the "
              "rank's own threads held (the host launching)"),
             (w["queued_asleep_ns"], "the executor's thread asleep (the GIL, a lock)")]
    split = ", ".join(f"{what} {fmt_ns(ns)}" for ns, what in parts if ns >= 0.05 * w["over"])
    return [_finding(
        "host_bound", "warning", hit["rank"], [], w["over"],
        f"{fmt_ranks(hit['rank'])} host-bound on operators: issuing and dispatching each of "
        f"rank {int(w['rank'])}'s {w['kernels']:,.0f} operators per step costs "
        f"{fmt_ns(w['per_op'])} beyond its kernel, more than the kernel itself (median "
        f"{fmt_ns(w['kernel_p50_ns'])}): {fmt_ns(w['over'])}/step, {_pct(w['over'], w['step_ns'])} "
        f"of the step ({split}); without that cost per operator (fewer, larger operators): "
        f"-{fmt_ns(w['over'])}/step",
        "fuse chains of small operators (or drop them), give each kernel more work (a "
        "larger batch), and keep Python work out of the step",
        rank=int(w["rank"]), per_op_ns=float(w["per_op"]), kernels_per_step=float(w["kernels"]),
        kernel_p50_ns=float(w["kernel_p50_ns"]), share=float(w["over"] / w["step_ns"]))]


def _own_part(c) -> str:
    """How much of the executor's waits for a CPU its own rank's threads
    (the host launching) caused, when that is most of them."""
    own = float(c.get("queued_own_wait_ns", 0.0) or 0.0)
    if own < 0.5 * float(c["queued_cpu_wait_ns"]):
        return ""
    return f" ({fmt_ns(own)} of it behind the rank's own threads: the host launching)"


def idle(devices: pd.DataFrame, explained: pd.Series | None = None,
         causes: pd.DataFrame | None = None) -> list[dict]:
    """Ranks idle (launched work waiting, or nothing after the last kernel)
    for a large share of the step.  ``explained`` (ns per step, by rank) is
    idle time a more specific finding accounts for (the gaps in and before
    runs of tiny operators, a host-bound run of operators) and is left out.
    ``causes`` (:func:`msprof.analysis.idle_causes.idle_causes`) says what
    the profile saw in the idle time: the step's tail, a launched kernel
    waiting for the executor, its thread waiting for a CPU or asleep."""
    d = devices
    if explained is not None and len(explained):
        less = d["rank"].map(explained).fillna(0).clip(upper=d["idle_ns"]).to_numpy()
        d = d.assign(idle_ns=d["idle_ns"] - less, queued_ns=(d["queued_ns"] - less).clip(lower=0))
        d = d.assign(idle_frac=(d["idle_ns"] / d["step_ns"]).where(d["step_ns"] > 0, 0.0))
    hit = d[d["idle_frac"] >= IDLE_FRAC]
    if hit.empty:
        return []
    worst = hit.loc[hit["idle_ns"].idxmax()]
    r = worst["rank"]
    seen = causes[causes["rank"] == r] if causes is not None and len(causes) else None
    rec = ("look for what the host does after the step's last kernel (host reads of device "
           "values, outputs copied out) and for what keeps the executor from its queue")
    if seen is not None and len(seen):
        c = seen.iloc[0]
        left = float(worst["queued_ns"])
        dispatch = max(left - c["queued_cpu_wait_ns"] - c["queued_asleep_ns"], 0.0)
        parts = [(c["tail_ns"], "after the step's last kernel (the host finishing the step: "
                                "synchronising, copying outputs out)", "tail"),
                 (min(c["queued_cpu_wait_ns"], left), "a launched kernel waiting while the "
                  "executor's thread waited for a CPU" + _own_part(c), "cpu"),
                 (min(c["queued_asleep_ns"], left), "a launched kernel waiting while the "
                  "executor's thread slept (the GIL, a lock)", "asleep"),
                 (dispatch, "a launched kernel waiting for the executor to start it", "dispatch")]
        parts = [p for p in parts if p[0] >= 0.05 * worst["idle_ns"]]
        parts.sort(key=lambda p: -p[0])
        what = "; ".join(f"{fmt_ns(ns)} {text}" for ns, text, _ in parts) or "no cause seen"
        top = parts[0][2] if parts else ""
        rec = {"tail": "shorten the step's end: fewer outputs copied to the host, no host reads "
                       "of device values inside the step",
               "cpu": "give the executor's thread a CPU of its own (fewer busy threads or "
                      "processes on the machine)",
               "asleep": "keep the host thread from holding the GIL or locks the executor "
                         "needs while it launches",
               "dispatch": "fewer, larger operators (the executor's cost per kernel dominates)",
               }.get(top, rec)
    else:
        queued = worst["queued_ns"] / worst["idle_ns"] if worst["idle_ns"] else 0.0
        what = (f"{queued:.0%} of it with a launched kernel waiting, the rest after the "
                f"step's last kernel")
    return [_finding(
        "device_idle", "warning", hit["rank"], [], worst["idle_ns"],
        f"{fmt_ranks(hit['rank'])} idle {worst['idle_frac']:.0%} of each step "
        f"({fmt_ns(worst['idle_ns'])}/step on rank {int(r)}: {what})",
        rec, idle_frac=float(worst["idle_frac"]))]


def input_bound(per_rank: pd.DataFrame, devices: pd.DataFrame,
                compiled: int = 0, framework: str | None = None) -> list[dict]:
    """Ranks whose training loop spends a large share of each iteration
    between steps (loading and preprocessing the next batch, logging):
    outside every step, where no step breakdown looks.  ``per_rank`` from
    :func:`msprof.analysis.between_steps.per_rank`; ``devices`` from
    :func:`typical_steps` (its ``comm_wait_ns``: what the other ranks wait
    in collectives).  The rank named is the one with the most time between
    steps: in a synchronous job the others wait for it at the next
    collective, so the collective that waited is not the cause.  What-if:
    that time gone (the next batch ready when the step ends) saves it on
    every iteration.  ``compiled``: steps before which the named rank
    compiled a new graph (work between steps the runtime does, said so).
    PyTorch on a CPU (``framework`` "torch") runs its operators on the
    host thread itself: their time overlaps the host's parts (a
    DataLoader's ``__next__`` is an operator scope), and is said apart."""
    if per_rank.empty:
        return []
    hit = per_rank[per_rank["share"] >= INPUT_BOUND_FRAC]
    if hit.empty:
        return []
    worst = hit.loc[hit["between_steps_ns"].idxmax()]
    r, gap, it = int(worst["rank"]), float(worst["between_steps_ns"]), float(worst["iteration_ns"])
    spent = [(worst["asleep_ns"], "asleep (sleep, I/O, a lock: waiting for data)"),
             (worst["on_cpu_ns"], "on a CPU (Python: loading, preprocessing, logging)"),
             (worst["cpu_wait_ns"], "waiting for a CPU others held")]
    torch = framework == "torch"
    if not torch:
        spent.append((worst["device_ns"], "running kernels outside a step"))
    where = ", ".join(f"{fmt_ns(ns)} {what}" for ns, what in
                      sorted(spent, key=lambda x: -x[0]) if ns >= 0.05 * gap)
    if torch and worst["device_ns"] >= 0.05 * gap:
        where += (f" ({fmt_ns(worst['device_ns'])} of it inside PyTorch operator scopes, "
                  f"a DataLoader's __next__ among them)")
    others = devices[devices["rank"] != r] if "comm_wait_ns" in devices else devices.iloc[0:0]
    waited = float(others["comm_wait_ns"].median()) if len(others) else 0.0
    makes_wait = (f"; the other ranks wait {fmt_ns(waited)}/step for it in their collectives"
                  if waited >= 0.05 * gap else "")
    if compiled:
        makes_wait += (f"; a new graph was compiled before {compiled} of its steps (compiling "
                       f"runs between steps)")
    return [_finding(
        "input_bound", "warning", hit["rank"], [], gap,
        f"{fmt_ranks(hit['rank'])} input-bound: rank {r} spends {fmt_ns(gap)} between one "
        f"step's end and the next one's begin ({worst['share']:.0%} of each "
        f"{fmt_ns(it)} iteration): {where or 'where, the profile cannot tell'}{makes_wait}; "
        f"the next batch ready when a step ends: -{fmt_ns(gap)}/iteration "
        f"(-{_pct(gap, it)})",
        "load and preprocess the next batch while the step runs (a prefetching loader, "
        "worker processes), or do the preprocessing once, before training",
        rank=r, between_steps_ns=gap, iteration_ns=it, share=float(worst["share"]),
        asleep_ns=float(worst["asleep_ns"]), on_cpu_ns=float(worst["on_cpu_ns"]),
        cpu_wait_ns=float(worst["cpu_wait_ns"]), device_ns=float(worst["device_ns"]),
        others_wait_ns=waited)]


def slow_rank(ranks: pd.DataFrame, devices: pd.DataFrame, cpus: pd.DataFrame | None = None,
              meta: dict | None = None, reported=()) -> list[dict]:
    """A rank whose compute per step exceeds the other ranks' median: in
    synchronous training every other rank waits for it at the next
    collective.  What-if: that rank keeping pace with the others saves what
    they wait for it (``caused_wait_ns``: what its late arrival at their
    collectives costs them), or its compute excess where no collective was recorded
    (``ranks`` from :func:`msprof.analysis.imbalance.ranks`).  Whether it is
    a slow rank at all is its compute excess on a CPU.
    With ``cpus`` (:func:`msprof.analysis.contention.compute_cpus`), the
    finding says where the rank's compute ran when it had cores of its own
    on a machine it shares with other ranks (evidence ``cores_apart``): a
    slower core makes a rank slow just as more work does.  A rank in
    ``reported`` (the CPU contention finding's ``slower_on_cpu_rank``) is
    left to that finding, which says how much longer its kernels took on a
    CPU beside the competition."""
    if len(ranks) < 2 or devices.empty:
        return []
    worst = ranks.iloc[0]
    step = devices["step_ns"].median()
    excess = float(worst["excess_ns"])
    if excess < IMBALANCE_FRAC * step:
        return []
    r = int(worst["rank"])
    if r in set(map(int, reported)):
        return []
    others = (worst["others_ns"] if "others_ns" in ranks else
              ranks[ranks["rank"] != r]["compute_ns"].median())
    waited = float(worst["caused_wait_ns"])
    # what the others wait for it is what the step loses to it; its compute
    # excess where no collective shows that (no comms recorded)
    saved = waited if waited > 0 else excess
    wait = (f" and arrives {fmt_ns(waited)}/step after them at their collectives (its "
            f"waits for a CPU and the time between its operators in)" if waited > 0 else "")
    rest = [int(x) for x in ranks["rank"] if int(x) != r]
    apart = cpus is not None and _contention.cores_apart(cpus, r, rest, meta or {})
    where, check = "", ""
    if apart:
        def main_cpus(rs):
            c = cpus[cpus["rank"].isin(rs) & (cpus["share"] >= 0.1)]
            return ", ".join(str(x) for x in sorted(c["cpu"].unique()))
        where = (f"; its kernels ran on CPU {main_cpus([r])}, the other ranks' on CPU "
                 f"{main_cpus(rest)} (a slower core slows a rank as more work does)")
        check = "; pin the ranks to other cores (or swap them) to tell its cores from its work"
    return [_finding(
        "slow_rank", "warning", [r], [], saved,
        f"rank {r} computes {fmt_ns(worst['compute_ns'])}/step vs {fmt_ns(others)} on the "
        f"other ranks (+{_pct(excess, others)}; time waiting for a CPU left out){wait}{where}; "
        f"rank {r} at the others' speed: -{fmt_ns(saved)}/step (-{_pct(saved, step)})",
        f"find out why rank {r} is slower (its host or device, data it gets, a shard "
        f"that is bigger than the others){check}",
        compute_ns=float(worst["compute_ns"]), others_ns=float(others),
        caused_wait_ns=waited, cores_apart=apart)]


def cpu_contention(step_df: pd.DataFrame, devices: pd.DataFrame,
                   holders: pd.DataFrame | None = None,
                   ranks: pd.DataFrame | None = None, world_size: int = 0) -> list[dict]:
    """The threads that run a rank's compute kernels were runnable but
    waited for a busy CPU (``cpu_wait_ns`` of the step breakdown, from the
    scheduler): the machine runs more busy threads than it has cores, and
    the rank's kernels stretch or start late by the time others held them.
    What-if, the larger of two lower bounds: per step, the slowest rank's
    compute less the slowest rank's compute without the waits inside it
    (``compute_cpu_wait_ns``: every rank waits for the slowest one); and
    the mean wait in collectives of the ranks other than the most
    contended one (it also covers kernels that started late and host
    threads held up).  Medians over steps.  (Not the waits themselves: part
    of a wait is time the thread would have spent waiting anyway, for the
    GIL or a peer.)  ``holders`` (:func:`msprof.analysis.contention.holders`)
    says who held the cores.  With ``ranks``
    (:func:`msprof.analysis.imbalance.ranks`), a rank that waited for a CPU
    more than the others and whose kernels also took longer on a CPU than
    theirs (by ``IMBALANCE_FRAC`` of the step or more) is said to here
    (evidence ``on_cpu_excess_ns``, ``slower_on_cpu_rank``), not called a
    slow rank: a core shared with other busy processes runs kernels with
    the caches those emptied (one measured +25 % on a CPU, beside a process
    that only spun); the first what-if then adds that excess.  The advice
    speaks of ranks and mpiexec only to a job of several (``world_size``;
    0: the ranks in ``devices``)."""
    world_size = world_size or len(devices)
    if devices.empty or "compute_cpu_wait_ns" not in step_df:
        return []
    step = devices["step_ns"].median()
    own = _own_waits(devices, holders, ranks, step)
    hit = devices[own >= CPU_WAIT_FRAC * step]
    if hit.empty:
        return []
    per = step_df.assign(on_cpu=step_df["compute_ns"] - step_df["compute_cpu_wait_ns"])
    per = per.groupby("step")
    gain = float((per["compute_ns"].max() - per["on_cpu"].max()).median())
    excess = _shared_core_excess(ranks, devices.assign(cpu_wait_ns=own.to_numpy()), step)
    if excess:              # its kernels at the others' speed on a CPU, too
        gain += excess[1]
    worst = hit.sort_values("cpu_wait_ns", ascending=False, kind="stable").iloc[0]
    others_steps = step_df[step_df["rank"] != worst["rank"]]
    if len(others_steps):
        gain = max(gain, float(others_steps.groupby("step")["comm_wait_ns"].mean().median()))
    rest = devices[~devices["rank"].isin(hit["rank"])]
    others = (f"; other ranks: {fmt_ns(rest['cpu_wait_ns'].median())}/step"
              if len(rest) else "")
    held = {}
    if holders is not None and len(holders):
        top = holders[holders["rank"] == worst["rank"]].head(3)
        held = {h: float(v) for h, v in zip(top["holder"], top["per_step_ns"])}
        shares = ", ".join(f"{h} {v:.0%}" for h, v in zip(top["holder"], top["share"])
                           if v >= 0.05)
        if shares:
            others += f"; rank {int(worst['rank'])} waited behind: {shares}"
    if excess:
        r, ns, pct = excess
        others += (f"; rank {r}'s kernels also took +{pct} longer on a CPU than the other "
                   f"ranks' ({fmt_ns(ns)}/step: a shared core runs them with caches others "
                   "emptied)")
    return [_finding(
        "cpu_contention", "warning", hit["rank"], [], gain,
        f"{fmt_ranks(hit['rank'])}: the threads running compute kernels waited "
        f"{fmt_ns(worst['cpu_wait_ns'])}/step for a CPU ({_pct(worst['cpu_wait_ns'], step)} "
        f"of the step; runnable while other threads or processes held the cores){others}; "
        f"without the competition: -{fmt_ns(gain)}/step (-{_pct(gain, step)})",
        ("give each rank cores of its own: fewer ranks or other busy processes per machine, "
         "ranks pinned to separate cores (mpiexec -bind-to core), fewer threads per rank "
         "(OMP_NUM_THREADS, data-loader workers)") if world_size > 1 else
        ("give the job cores of its own: fewer other busy processes on the machine, fewer "
         "threads (OMP_NUM_THREADS, data-loader workers)"),
        cpu_wait_ns={int(r): float(v) for r, v in zip(devices["rank"], devices["cpu_wait_ns"])},
        held_by=held, on_cpu_excess_ns=float(excess[1]) if excess else 0.0,
        slower_on_cpu_rank=excess[0] if excess else None)]


def _peer_share(holders: pd.DataFrame | None, rank: int) -> float:
    """The share of ``rank``'s waits for a CPU that other ranks of the job
    ended (held the core)."""
    if holders is None or holders.empty:
        return 0.0
    h = holders[holders["rank"] == rank]
    return float(h.loc[h["holder"].astype(str).str.startswith("rank "), "share"].sum())


def _own_waits(devices: pd.DataFrame, holders: pd.DataFrame | None,
               ranks: pd.DataFrame | None, step: float) -> pd.Series:
    """Per row of ``devices``, its compute threads' waits for a CPU, but for
    the slow rank (the one the others wait for: more compute than theirs
    by ``IMBALANCE_FRAC`` of the step) less the part other ranks held the
    cores for: those ranks were waiting for it, spinning in a collective,
    so their hold on the cores follows from its work, not from a busy
    machine (a rank with twice the batch was called contended, its peer
    spinning in MPI beside it)."""
    waits = devices["cpu_wait_ns"].astype("float64")
    if ranks is None or len(ranks) < 2 or holders is None or holders.empty:
        return waits
    worst = ranks.iloc[0]
    if float(worst["excess_ns"]) < IMBALANCE_FRAC * step or float(worst["caused_wait_ns"]) <= 0:
        return waits
    r = int(worst["rank"])
    mine = (devices["rank"] == r).to_numpy()
    return waits.where(~mine, waits * (1 - _peer_share(holders, r)))


def _shared_core_excess(ranks: pd.DataFrame | None, devices: pd.DataFrame, step: float):
    """(rank, excess_ns, percent) of the rank that would be the slow rank,
    when its compute threads waited for a CPU more than the other ranks'
    did (by ``CPU_WAIT_FRAC`` of the step or more: its cores are the more
    shared ones) and its kernels took at most ``SHARED_CORE_MAX`` longer
    on a CPU than the others'; else None.  Where every rank waits alike, sharing does
    not explain why one is slower."""
    if ranks is None or len(ranks) < 2:
        return None
    worst = ranks.iloc[0]
    r, excess = int(worst["rank"]), float(worst["excess_ns"])
    waits = devices.set_index("rank")["cpu_wait_ns"]
    if excess < IMBALANCE_FRAC * step or r not in waits.index:
        return None
    if waits[r] - waits.drop(index=r).median() < CPU_WAIT_FRAC * step:
        return None
    others = float(worst["others_ns"])
    if excess > SHARED_CORE_MAX * others:
        return None         # more than a shared core's caches explain: more work
    return r, excess, _pct(excess, others)


P2P_TYPES = ("Send", "Recv")


def exposed_comm(by_op: pd.DataFrame, devices: pd.DataFrame, steps: pd.DataFrame,
                 explained_ns: float = 0.0) -> list[dict]:
    """Communication that no compute hides.  What-if: perfect overlap saves
    the exposed transfer time (waits for other ranks excluded) of a typical
    step: for a collective, on the rank where it is smallest, since every
    rank must leave a collective together; for a send or receive, on its
    own rank (a pipeline's stages run different graphs, whose operators may
    share names); the finding takes the rank that would gain most.  Per
    operator (e.g. one bucket's allreduce) the same from the means of
    ``by_op`` (per rank, from :func:`msprof.analysis.comm.by_op`, column
    ``rank``).  ``devices`` from :func:`typical_steps` (its
    ``exposed_transfer_ns`` per rank; without it, the operators' sums).
    ``explained_ns`` per step is accounted for by a more specific finding
    (a slow link) and left out.  A warning from ``EXPOSED_COMM_FRAC`` of
    the step on, an info from ``IMPACT_FLOOR``: the severity its what-if
    earns, on a balanced job as on any other."""
    if by_op.empty or devices.empty:
        return []
    p2p = by_op["type"].isin(P2P_TYPES)
    job = by_op[~p2p].groupby("name")["transfer_ns"].min()
    k = by_op.assign(job_ns=by_op["transfer_ns"].where(p2p, by_op["name"].map(job)).clip(lower=0),
                     own_ns=by_op["transfer_ns"].clip(lower=0), p2p=p2p.to_numpy())
    coll_r = k[~k["p2p"]].groupby("rank")["own_ns"].sum()
    p2p_r = k[k["p2p"]].groupby("rank")["own_ns"].sum()
    ranks = sorted(set(k["rank"]))
    coll_r, p2p_r = coll_r.reindex(ranks).fillna(0), p2p_r.reindex(ranks).fillna(0)
    if "exposed_transfer_ns" in devices:
        # the typical step's exposed transfer per rank, split like the means
        e = devices.set_index("rank")["exposed_transfer_ns"].reindex(ranks).fillna(0).clip(lower=0)
        both = coll_r + p2p_r
        share = (coll_r / both).where(both > 0, 0.0)
        coll_r, p2p_r = e * share, e * (1 - share)
    per_rank = coll_r.min() + p2p_r
    worst = per_rank.idxmax()
    total = float(per_rank.max()) - max(explained_ns, 0.0)
    step = float(devices["step_ns"].mean())
    if total < IMPACT_FLOOR * step:
        return []
    severity = "warning" if total >= EXPOSED_COMM_FRAC * step else "info"
    per = k[k["rank"] == worst].set_index("name")["job_ns"].sort_values(
        ascending=False, kind="stable")
    top = per.index[0]
    gain = float(per.iloc[0])
    ops = [n for n in per.index[:TOP_OPS] if per.loc[n] > 0]
    beyond = (f" beyond the {fmt_ns(explained_ns)} the slow link explains"
              if explained_ns > 0 else "")
    return [_finding(
        "exposed_comm", severity, devices["rank"], ops, total,
        f"communication exposed {fmt_ns(total)}/step ({_pct(total, step)} of the step) with "
        f"no compute to hide it{beyond}; perfect overlap of {top}: -{fmt_ns(gain)}/step "
        f"(-{_pct(gain, step)})",
        "overlap it with compute: issue it earlier (smaller or reordered buckets), "
        "or move independent compute next to it",
        per_op={n: float(v) for n, v in per.head(TOP_OPS).items()}, rank=int(worst))]


def comm_bound(devices: pd.DataFrame, by_op: pd.DataFrame, kinds: set) -> list[dict]:
    """Parallel-strategy hint: in data parallel, communication per step
    longer than compute per step means the job is communication-bound at
    this size."""
    if by_op.empty or devices.empty or "allreduce" not in kinds or kinds & {"send", "recv"}:
        return []
    comm = by_op.groupby("rank")["dur_ns"].sum() - by_op.groupby("rank")["wait_ns"].sum()
    compute = devices.set_index("rank")["compute_ns"]
    ratio = (comm / compute.reindex(comm.index)).median()
    if not ratio > 1:
        return []
    exposed = float(devices["exposed_comm_ns"].mean() - devices["comm_wait_ns"].mean())
    return [_finding(
        "strategy", "info", devices["rank"], [], max(exposed, 0.0),
        f"data parallel is communication-bound at this size: gradient allreduce takes "
        f"{ratio:.1f}x the compute of a step ({fmt_ns(comm.median())} vs "
        f"{fmt_ns(compute.median())}/step)",
        "raise the work per rank (bigger batch per rank, gradient accumulation), use "
        "fewer ranks, or shard the model (operator or pipeline parallel) instead",
        comm_to_compute=float(ratio))]


def slow_link(links: pd.DataFrame, groups: pd.DataFrame, steps_per_rank: float) -> list[dict]:
    """A pair of ranks (or a group) whose bandwidth is far below the others'.
    What-if: that link (both directions) at the other links' median
    bandwidth, its messages per step taken at the median message's time."""
    out = []
    hit = links[links["slow"]] if len(links) else links
    if len(hit):
        r = hit.iloc[0]
        a, b = sorted((int(r["src"]), int(r["dst"])))
        both = hit[((hit["src"] == a) & (hit["dst"] == b))
                   | ((hit["src"] == b) & (hit["dst"] == a))]
        # per step: its messages, each the median message's time, at the
        # other links' speed
        t = both["time_p50_ns"] * both["messages"] if "time_p50_ns" in both else both["time_ns"]
        link_ns = float(t.sum()) / max(steps_per_rank, 1)
        gain = float((t * (1 - both["ratio"])).sum()) / max(steps_per_rank, 1)
        p50 = r["gbps_p50"] if "gbps_p50" in r else r["gbps"]
        ways = "both ways" if len(both) == 2 else f"rank {int(r['src'])} -> rank {int(r['dst'])}"
        out.append(_finding(
            "slow_link", "warning", [a, b], [], gain,
            f"link rank {a} <-> rank {b} is slow ({ways}): its messages move {p50:.3g} GB/s, "
            f"{r['ratio']:.0%} of the other links' median ({int(both['messages'].sum())} "
            f"messages, {fmt_ns(link_ns)}/step); at their speed: -{fmt_ns(gain)}/step",
            "check that link (NIC, cabling, placement across hosts/sockets) or map the "
            "heaviest traffic off it",
            gbps=float(p50), ratio=float(r["ratio"]), link_ns=link_ns))
    ghit = groups[groups["slow"]] if len(groups) else groups
    for r in ghit.head(1).itertuples(index=False):
        gain = r.time_ns * (1 - r.ratio) / max(steps_per_rank, 1)
        ranks = [int(x) for x in str(r.members).split(",") if x]
        out.append(_finding(
            "slow_link", "warning", ranks, [], gain,
            f"group {r.group} ({fmt_ranks(ranks)}) reaches {r.busbw:.3g} GB/s bus bandwidth in "
            f"{r.kind}, {r.ratio:.0%} of other groups; at their speed: -{fmt_ns(gain)}/step",
            "check the links between these ranks",
            busbw=float(r.busbw), ratio=float(r.ratio)))
    return out


def pipeline_bubble(stages: pd.DataFrame, causes: pd.DataFrame | None = None) -> list[dict]:
    """A pipeline whose stages sit idle waiting on each other.  What-if:
    the bottleneck stage (most compute) without its bubble; and the GPipe
    bubble with twice the micro-batches.  ``causes`` (from
    :func:`msprof.analysis.pipeline.causes`) names who waits for whom in
    the steady state."""
    if stages.empty or stages["bubble_ratio"].max() < BUBBLE_FRAC:
        return []
    neck = stages.loc[stages["compute_ns"].idxmax()]
    worst = stages.loc[stages["bubble_ratio"].idxmax()]
    p, m = len(stages), worst["micro_batches"]
    steady = stages["steady_ns"].sum() / max(stages["bubble_ns"].sum(), 1)
    st_of = dict(zip(stages["rank"], stages["stage"]))
    top = None
    if causes is not None and len(causes):
        sc = causes[causes["phase"] == "steady"]
        top = sc.iloc[0] if len(sc) else None
    if steady > 0.5 and top is not None and top["rank"] in st_of and top["waited_for"] in st_of:
        a, b = int(st_of[top["rank"]]), int(st_of[top["waited_for"]])
        way = "activations" if b < a else "gradients"
        per = top["waits"] / max(worst["steps"], 1)
        cause = (f"mostly steady-state waits: stage {a} waits {fmt_ns(top['per_step_ns'])}/step "
                 f"for stage {b}'s {way} beyond the fill and drain ({per:.0f} "
                 f"waits a step: stage {b} takes longer per micro-batch in that pass; stage "
                 f"imbalance, compute per step {fmt_ns(stages['compute_ns'].min())} to "
                 f"{fmt_ns(stages['compute_ns'].max())})")
        rec = ("rebalance the work of each pass (forward, backward) across stages, "
               "per micro-batch")
    elif steady > 0.5:
        slow = stages.loc[stages["compute_ns"].idxmax()]
        cause = (f"mostly steady-state waits: stage {int(slow['stage'])} computes "
                 f"{fmt_ns(slow['compute_ns'])}/step vs {fmt_ns(stages['compute_ns'].median())} "
                 f"median (stage imbalance)")
        rec = "rebalance the layers across stages"
    else:
        twice = (p - 1) / (2 * m + p - 1) if m == m else float("nan")
        cause = (f"mostly fill and drain of the schedule (GPipe ideal "
                 f"{worst['ideal_ratio']:.0%} with {m:.0f} micro-batches; {twice:.0%} with "
                 f"{2 * m:.0f})")
        rec = "use more micro-batches per step (or an interleaved/1F1B schedule)"
    gain = float(neck["bubble_ns"])
    return [_finding(
        "pipeline_bubble", "warning", stages["rank"], [], gain,
        f"pipeline bubble {worst['bubble_ratio']:.0%} of the step on stage "
        f"{int(worst['stage'])} ({fmt_ns(worst['bubble_ns'])}/step; fill and drain "
        f"{worst['schedule_ratio']:.0%}), {cause}; without the "
        f"bottleneck stage's bubble: -{fmt_ns(gain)}/step "
        f"(-{_pct(gain, neck['step_ns'])})",
        rec, bubble_ratio=float(worst["bubble_ratio"]),
        schedule_ratio=float(worst["schedule_ratio"]), steady_share=float(steady))]


def memory_leak(nf: pd.DataFrame) -> list[dict]:
    """Operators that leave never-freed blocks behind every step.  Sizes
    are per rank (each rank's pool fills on its own): ``bytes_per_step``
    of the top operator on the rank where it leaks most, ``bytes_by_rank``
    its never-freed bytes on each rank."""
    leaks = nf[nf["leak"]] if len(nf) else nf
    if leaks.empty:
        return []
    by = leaks.groupby("name").agg(per_step=("per_step", "max"), bytes=("bytes", "max"),
                                   scope=("scope", "first"), op_id=("op_id", "first"),
                                   ranks=("rank", "nunique")).sort_values(
        "per_step", ascending=False, kind="stable")
    top = by.index[0]
    row = by.iloc[0]
    mine = leaks[leaks["name"] == top]
    per_rank = {int(r): int(b) for r, b in zip(mine["rank"], mine["bytes"])}
    where = f" ({row['scope']})" if row["scope"] else ""
    each = " on each rank" if row["ranks"] > 1 else ""
    others = len(by) - 1
    more = f"; {others} more leaking operator(s)" if others else ""
    return [_finding(
        "memory_leak", "error", leaks["rank"].unique(), list(by.index[:TOP_OPS]), 0,
        f"memory leak on {fmt_ranks(leaks['rank'])}: {top}{where} allocates "
        f"{row['per_step']:,.0f} bytes/step never freed{each} ({row['bytes']:,} bytes in all "
        f"on {fmt_ranks(mine['rank'])}){more}; the pool will run out",
        "free (or reuse) the buffer the operator allocates each step",
        bytes_per_step=float(row["per_step"]), bytes_by_rank=per_rank, op_id=int(row["op_id"]))]


def memory_growth(growth: pd.DataFrame, held: pd.DataFrame, graphs: pd.DataFrame,
                  leaks: pd.DataFrame | None = None) -> list[dict]:
    """The pool's use at the end of a step rising from step to step
    (:func:`msprof.analysis.memory_steps.growth`), whether the growth is
    allocated inside the steps or between them.  ``held`` (what was
    allocated after the first step and is still held at the end,
    :func:`~msprof.analysis.memory_steps.held`) names the allocations, by
    scope; ``graphs`` (:func:`~msprof.analysis.memory_steps.new_graphs`)
    tells a compiled-graph cache that grows (a new graph in most steps:
    input shapes change).  A rank whose growth the per-step leak finding
    (``leaks``, :func:`msprof.analysis.memory.never_freed`) already
    accounts for (90 % of it or more) is left to that finding."""
    hit = growth[growth["growing"]] if len(growth) else growth
    if len(hit) and leaks is not None and len(leaks):
        known = leaks[leaks["leak"]].groupby("rank")["per_step"].sum()
        covered = hit["rank"].map(known).fillna(0) >= 0.9 * hit["bytes_per_step"]
        hit = hit[~covered.to_numpy()]
    if hit.empty:
        return []
    worst = hit.loc[hit["bytes_per_step"].idxmax()]
    r = int(worst["rank"])
    mine = held[held["rank"] == r] if len(held) else held
    what = "; ".join(
        f"{h['name']}{' (' + h['scope'] + ')' if h['scope'] else ''}"
        f"{', graph ' + str(h['graph_id']) if h['graph_id'] >= 0 else ''}: "
        f"{fmt_bytes(h['bytes'])} in {h['blocks']} block(s)"
        + (f", {fmt_bytes(h['between'])} of it allocated between steps" if h["between"] else "")
        for _, h in mine.head(TOP_OPS).iterrows())
    g = graphs[(graphs["rank"] == r) & (graphs["index"] > 0)] if len(graphs) else graphs
    later = int(worst["steps"]) - 1
    per_step_graphs = later > 0 and len(g) >= GRAPH_CACHE_FRAC * later
    rebuilt = per_step_graphs and bool(g["same_shapes"].all())
    why = ("the same graph compiled again: a cell or optimizer built anew each step"
           if rebuilt else "input shapes change")
    cache = (f"; a new graph per step: kernels of a newly compiled graph ran in {len(g)} of the "
             f"{later} steps after the first ({why}, and each graph compiled keeps its "
             f"buffers)" if per_step_graphs else "")
    msg = (f"memory grows on {fmt_ranks(hit['rank'])}: rank {r}'s pool holds "
           f"{fmt_bytes(worst['bytes_per_step'])} more at the end of each step (from "
           f"{fmt_bytes(worst['first'])} after its first step to {fmt_bytes(worst['last'])} "
           f"after its last, rising from its step #{int(worst['since_step'])} on, in "
           f"{worst['rising']:.0%} of the steps)"
           + (f"; still held: {what}" if what else "") + cache + "; the pool will run out")
    rec = ("build the network, its training cell and the optimizer once, before the loop"
           if rebuilt else
           "keep input shapes fixed (pad or bucket the batches, drop the last partial "
           "batch) so one compiled graph serves every step" if per_step_graphs else
           "drop what the training loop keeps across steps (outputs or tensors kept in a "
           "list, a cell or optimizer built anew each step): build the network and "
           "optimizer once, keep numbers (loss.item()) rather than tensors")
    return [_finding(
        "memory_growth", "error", hit["rank"], list(mine["name"].head(TOP_OPS)), 0, msg, rec,
        rank=r, bytes_per_step=float(worst["bytes_per_step"]), first=int(worst["first"]),
        last=int(worst["last"]), since_step=int(worst["since_step"]),
        rising=float(worst["rising"]), new_graph_steps=len(g), graph_cache=bool(per_step_graphs), rebuilt=rebuilt,
        held={str(h["name"]): int(h["bytes"]) for _, h in mine.head(TOP_OPS).iterrows()})]


def dominant_op(ops: pd.DataFrame, waits: pd.Series | None = None) -> list[dict]:
    """One operator taking most of the kernel time: where optimisation pays.
    ``waits`` (ns in all, by operator name) is time collectives spent
    waiting for a peer: not their work, and no reason to optimise them (a
    loss allreduce of 8 bytes that waits for a rank's data loader took 89 %
    of the kernel time), so it is left out of their time."""
    if ops.empty:
        return []
    if waits is not None and len(waits):
        less = ops["name"].map(waits).fillna(0).clip(upper=ops["total_ns"])
        own = ops["total_ns"] - less
        ops = ops.assign(share=own / max(float(own.sum()), 1.0),
                         per_step_ns=ops["per_step_ns"] * (own / ops["total_ns"].clip(lower=1)))
        ops = ops.sort_values("share", ascending=False, kind="stable")
    top = ops.iloc[0]
    if top["share"] < DOMINANT_SHARE or len(ops) < 2:
        return []
    per_step = top["per_step_ns"] if pd.notna(top["per_step_ns"]) else 0
    details = ([f"{fmt_ns(per_step)}/step"] if per_step else []) + (
        [f"{fmt_rate(top['gflops'])} GFLOP/s"] if pd.notna(top["gflops"]) else [])
    return [_finding(
        "dominant_op", "info", [], [top["name"]], per_step,
        f"{top['name']} ({top['type']}) takes {top['share']:.0%} of kernel time"
        + (f" ({', '.join(details)})" if details else ""),
        "optimise this operator first",
        share=float(top["share"]))]


_PARTS = ["step_ns", "busy_ns", "host_gap_ns", "idle_ns", "queued_ns", "comm_ns", "compute_ns",
          "exposed_comm_ns", "bubble_ns", "overlapped_comm_ns", "comm_wait_ns", "cpu_wait_ns",
          "compute_cpu_wait_ns"]


def typical_steps(step_df: pd.DataFrame) -> pd.DataFrame:
    """Per rank, the typical step the detectors judge: the median over the
    rank's steps of each part of :func:`msprof.analysis.breakdown.step_breakdown`,
    plus ``exposed_transfer_ns`` (exposed communication that is not a wait
    for a peer), ``steps`` and the ``*_frac`` shares of the median step.

    Medians, not means: the first step (warm-up: first touches, lazy
    allocations, connection set-up) or one hiccup of a busy machine can
    last several typical steps, and would otherwise raise an alarm, or
    size one, that no steady-state step shows."""
    if step_df.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in ["rank", "steps"] + _PARTS})
    parts = [c for c in _PARTS if c in step_df]
    df = step_df[["rank"] + parts].assign(
        exposed_transfer_ns=step_df["exposed_comm_ns"] - step_df["comm_wait_ns"])
    g = df.groupby("rank")
    out = g.median()
    out.insert(0, "steps", g.size())
    for part in ("busy", "host_gap", "idle", "compute", "exposed_comm", "bubble"):
        out[f"{part}_frac"] = (out[f"{part}_ns"] / out["step_ns"]).where(out["step_ns"] > 0, 0.0)
    return out.reset_index()


def below_floor(items: list[dict], step_ns: float) -> list[dict]:
    """Warnings whose what-if saves less than ``IMPACT_FLOOR`` of the
    typical step (or iteration: :func:`findings` passes the longer) become
    infos (evidence ``below_floor``): a bottleneck
    that fixing would not shorten the step by a noticeable share is not
    one to act on (one-rank runs raised CPU contention whose what-if saved
    0 ns).  Errors stay: they say the data or the run is broken."""
    out = []
    for f in items:
        if f["severity"] == "warning" and step_ns > 0 and f["impact_ns"] < IMPACT_FLOOR * step_ns:
            f = {**f, "severity": "info",
                 "evidence": {**f["evidence"], "below_floor": IMPACT_FLOOR}}
        out.append(f)
    return out


def rank_order(items: list[dict]) -> list[dict]:
    """Most important first: severity, then impact."""
    return sorted(items, key=lambda f: (_SEVERITY.get(f["severity"], 9), -f["impact_ns"]))


def findings(profile, rank: int | None = None) -> list[dict]:
    """All detectors over one profile (optionally one rank), ranked."""
    step_df = profile.step_breakdown(rank)
    devices = typical_steps(step_df)
    ops = profile.op_stats(rank)
    reg = profile.ops.drop_duplicates(["rank", "op_id"], keep="last")
    names = dict(zip(zip(reg["rank"].tolist(), reg["op_id"].tolist()), reg["name"]))
    out = data_quality(profile.meta)
    loop = pd.DataFrame()
    leaks = profile.leaks(rank)
    out += memory_leak(leaks)
    bounds = profile.memory_boundaries(rank)
    graphs = _memory_steps.new_graphs(profile.kernels if rank is None else
                                      profile.kernels[profile.kernels["rank"] == rank],
                                      profile.ops, profile.steps)
    out += memory_growth(_memory_steps.growth(bounds), profile.memory_held(rank), graphs, leaks)
    waits = None
    if not devices.empty:
        loop = _between.per_rank(profile.between_steps(rank), step_df)
        later = graphs[graphs["index"] > 0] if len(graphs) else graphs
        out += input_bound(loop, devices, int(later.groupby("rank").size().max())
                           if len(later) else 0, profile.meta.get("framework"))
        out += host_bound(devices, profile.gaps(rank), names, profile.host_summary(rank),
                          profile.meta.get("framework"))
        tiny = _hostbound.tiny_time(profile.kernels, profile.ops, rank)
        found = tiny_ops(tiny, devices, _hostbound.launch_cost(profile.kernels))
        out += found
        starved = None
        if found:           # the idle time the tiny operators' overhead explains
            per = tiny.groupby(["rank", "step"])["overhead_ns"].sum()
            steps = devices.set_index("rank")["steps"]
            starved = per.groupby(level="rank").apply(
                lambda v: _median_over(v, int(steps.get(v.name, len(v)))))
        causes = _idle_causes.idle_causes(profile.gaps(rank), profile.kernels if rank is None
                                          else profile.kernels[profile.kernels["rank"] == rank],
                                          step_df, profile.blocked, profile.cpu_waits)
        causes = _idle_causes.mostly_own(causes, profile.cpu_holders())
        gapped = {int(r) for f in out if f["kind"] == "host_bound" for r in f["ranks"]}
        per_op = host_per_op(causes[~causes["rank"].isin(gapped)], devices, starved)
        out += per_op
        if per_op:          # the idle time the per-operator cost explains
            hit = causes[causes["rank"].isin(per_op[0]["ranks"])].set_index("rank")
            hit = hit["queued_ns"] - hit["queued_cpu_wait_ns"] + hit["queued_own_wait_ns"]
            starved = hit if starved is None else hit.add(starved, fill_value=0)
        out += idle(devices, starved, causes)
        ranks = profile.slow_ranks() if rank is None else None
        contention = cpu_contention(step_df, devices, profile.cpu_holders(), ranks,
                                    int(profile.meta.get("world_size") or 0))
        out += contention
        comms = profile.comms
        if rank is None:
            folded = [f["evidence"]["slower_on_cpu_rank"] for f in contention
                      if f["evidence"]["slower_on_cpu_rank"] is not None]
            out += slow_rank(ranks, devices, profile.compute_cpus(), profile.meta,
                             reported=folded)
            links = slow_link(profile.links(), profile.groups(), devices["steps"].median())
            out += links
            out += pipeline_bubble(profile.pipeline(), profile.bubble_causes())
        else:
            links = []
        if len(comms):
            per_rank = profile.comm_ops_per_rank(rank)
            out += exposed_comm(per_rank, devices, profile.steps,
                                sum(f["impact_ns"] for f in links))
            out += comm_bound(devices, per_rank, set(comms["kind"].unique()))
            waits = (per_rank["wait_ns"] * per_rank["calls"]).groupby(per_rank["name"]).sum()
    out += dominant_op(ops, waits)
    if not devices.empty:
        # the floor is a share of what the job repeats: the step, or the
        # iteration where the loop between steps makes it longer
        cycle = float(devices["step_ns"].median())
        if len(loop):
            cycle = max(cycle, float(loop["iteration_ns"].median()))
        out = below_floor(out, cycle)
    return rank_order(out)
