"""Frame trees for flamegraphs: where a metric went, along the runtime's
scope hierarchy (step -> cell scopes -> op type -> op).

:func:`stacks` turns a profile's tables into one row per distinct stack
(``rank``, ``stack`` as a tuple of frame names, ``cls``, ``value``),
aggregated with pandas (no loop per event).  :func:`tree` builds the frame
tree from those rows; :func:`fold_thin` and :func:`focus` reshape it.  The
terminal renderer and the folded-stacks exporter both start from here.

Metrics (``value`` units):

* ``device``  -- kernel time on every stream (ns)
* ``launch``  -- host-to-device delay, start - launch, where the launch
  time is known (ns)
* ``comm``    -- kernel time on the communication streams (ns); the
  ``comms`` table by collective kind when no kernel ran on one
* ``memory``  -- bytes allocated from the pool (frees are not counted)

Of a summary-mode profile (per-operator aggregates, no kernel or pool
timeline) the ``device`` and ``comm`` values are the operators' kernel
totals (``kernel_summary``) and ``memory`` their allocated bytes
(``memory_summary``), all under one root frame :data:`WHOLE_RUN`: a
summary cannot tell one step from another, nor work inside steps from
work outside them.  ``launch``, ``step`` and ``per_step`` need a
trace-mode profile.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from msprof.errors import MsprofError

METRICS = {
    "device": "device time",
    "launch": "launch delay (host)",
    "comm": "communication time",
    "memory": "allocated bytes",
}
BYTE_METRICS = {"memory"}

COMPUTE, COMM, MEMORY, OTHER = "compute", "communication", "memory", "other"
WHOLE_RUN = "whole run"      # the root frame of a summary-mode profile

_COMM_TYPE = re.compile(
    r"^(AllReduce|AllGather|ReduceScatter|Broadcast|Send|Recv|Receive|AllToAll|Barrier|"
    r"Reduce|Gather|Scatter)\b", re.I)
_MEMORY_TYPE = re.compile(
    r"^(Reshape|Fill|ZeroFill|ShardSlice|Assign\w*|Copy\w*|Memcpy\w*|Memset\w*|Identity|"
    r"Transpose|Concat|Slice|Load|Store|Cast)$", re.I)


def op_class(op_type: str, stream: int = 0) -> str:
    """compute / communication / memory, from an op's type and the stream it
    ran on (anything off the compute stream is communication)."""
    if stream != 0 or _COMM_TYPE.match(op_type or ""):
        return COMM
    if _MEMORY_TYPE.match(op_type or ""):
        return MEMORY
    return COMPUTE


def op_paths(ops: pd.DataFrame) -> pd.DataFrame:
    """One row per (rank, op_id): ``path`` (cells..., type, name) and ``cls``.

    ``scope`` is the full scope path with the op's own name last
    (``net/conv1/Conv2D-op3``); where it does not end with the name (a scope
    of cells only) the whole scope is taken as cells."""
    rows = []
    for rank, op_id, name, typ, scope in ops[["rank", "op_id", "name", "type", "scope"]].itertuples(
            index=False):
        parts = [p for p in str(scope or "").split("/") if p]
        name = str(name or "") or (parts[-1] if parts else f"op{op_id}")
        if parts and parts[-1] == name:
            parts = parts[:-1]
        path = tuple(parts) + ((str(typ),) if typ else ()) + (name,)
        rows.append((int(rank), int(op_id), path, op_class(str(typ or ""))))
    out = pd.DataFrame(rows, columns=["rank", "op_id", "path", "cls"])
    return out.drop_duplicates(["rank", "op_id"], keep="last")


def _step_label(step: pd.Series, per_step: bool, steps_seen: np.ndarray) -> pd.Series:
    if per_step:
        return step.map(lambda s: f"step {s}" if s >= 0 else "outside steps")
    inside = steps_seen[steps_seen >= 0]
    if len(inside) == 0:
        all_label = "steps"
    elif len(inside) == 1:
        all_label = f"step {inside[0]}"
    else:
        all_label = f"steps {inside.min()}-{inside.max()}"
    return pd.Series(np.where(step.to_numpy() >= 0, all_label, "outside steps"), index=step.index)


def _steps_of(profile, rank: Optional[int]) -> np.ndarray:
    """The step numbers of the profile (of ``rank``), which name the root frame."""
    st = profile.steps
    if rank is not None:
        st = st[st["rank"] == rank]
    return st["step"].unique()


def _memory_steps(memory: pd.DataFrame, steps: pd.DataFrame) -> pd.Series:
    """The step whose window holds each memory event (-1 outside steps)."""
    out = np.full(len(memory), -1, dtype="int64")
    mr, ts = memory["rank"].to_numpy(), memory["ts_ns"].to_numpy()
    for rank in np.unique(mr):
        st = steps[steps["rank"] == rank].sort_values("start_ns")
        if st.empty:
            continue
        pos = np.flatnonzero(mr == rank)     # positions, not labels: no index lookups
        starts = st["start_ns"].to_numpy()
        ends = starts + st["dur_ns"].to_numpy()
        i = np.searchsorted(starts, ts[pos], side="right") - 1
        ok = (i >= 0) & (ts[pos] < ends[np.clip(i, 0, None)])
        out[pos] = np.where(ok, st["step"].to_numpy()[np.clip(i, 0, None)], -1)
    return pd.Series(out, index=memory.index)


def stacks(profile, metric: str = "device", rank: Optional[int] = None,
           step: Optional[int] = None, per_step: bool = False,
           by_rank: bool = False) -> pd.DataFrame:
    """One row per distinct stack: ``rank`` (-2 when ranks are merged),
    ``stack`` (tuple of frame names, root first), ``cls`` and ``value``.

    ``rank`` selects one rank; ``by_rank`` keeps ranks apart (else they are
    summed); ``step`` selects one step; ``per_step`` gives each step its own
    root frame (else all steps share one, and work outside any step another).
    """
    if metric not in METRICS:
        raise MsprofError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})")
    profile.check_rank(rank)
    if profile.summary_mode:
        ev = _summary_events(profile, metric, step, per_step)
        if metric == "comm" and ev.empty and not profile.comms.empty:
            return _comm_table_stacks(profile, rank, step, per_step, by_rank)
        if rank is not None:
            ev = ev[ev["rank"] == rank]
        return _stacks_of(ev, profile, rank, by_rank, lambda step: [WHOLE_RUN] * len(step))
    k = profile.kernels
    if metric == "memory":
        mem = profile.memory
        mem = mem[mem["size"] > 0]
        ev = pd.DataFrame({"rank": mem["rank"].to_numpy(), "op_id": mem["op_id"].to_numpy(),
                           "stream": 0, "step": _memory_steps(mem, profile.steps).to_numpy(),
                           "value": mem["size"].to_numpy()})
    elif metric == "launch":
        ok = (k["launch_ns"] > 0) & (k["start_ns"] >= k["launch_ns"])
        kk = k[ok]
        ev = pd.DataFrame({"rank": kk["rank"], "op_id": kk["op_id"], "stream": kk["stream"],
                           "step": kk["step"], "value": kk["start_ns"] - kk["launch_ns"]})
    else:
        kk = k[k["stream"] != 0] if metric == "comm" else k
        ev = kk[["rank", "op_id", "stream", "step"]].assign(value=kk["dur_ns"])
        if metric == "comm" and ev.empty and not profile.comms.empty:
            return _comm_table_stacks(profile, rank, step, per_step, by_rank)
    if rank is not None:
        ev = ev[ev["rank"] == rank]
    if step is not None:
        ev = ev[ev["step"] == step]
        if ev.empty and step not in set(profile.steps["step"]):
            raise MsprofError(f"no step {step} in this profile")
    steps_seen = _steps_of(profile, rank)
    return _stacks_of(ev, profile, rank, by_rank, lambda st: _step_label(
        st, per_step or step is not None, steps_seen))


def _summary_events(profile, metric: str, step, per_step) -> pd.DataFrame:
    """The rows :func:`stacks` aggregates, from a summary-mode profile's
    per-operator totals (``step`` 0 throughout: the summary has none)."""
    if metric == "launch" or step is not None or per_step:
        what = ("--metric launch" if metric == "launch"
                else "--step" if step is not None else "--per-step")
        raise MsprofError(f"{what} needs a trace-mode profile (this one is summary mode: "
                          "per-operator totals, no kernel times; record with --mode trace)")
    if metric == "memory":
        m = profile.memory_summary
        return pd.DataFrame({"rank": m["rank"].to_numpy(), "op_id": m["op_id"].to_numpy(),
                             "stream": 0, "step": 0, "value": m["alloc_bytes"].to_numpy()})
    k = profile.kernel_summary
    k = k[k["stream"] != 0] if metric == "comm" else k
    return pd.DataFrame({"rank": k["rank"].to_numpy(), "op_id": k["op_id"].to_numpy(),
                         "stream": k["stream"].to_numpy(), "step": 0,
                         "value": k["total_ns"].to_numpy()})


def _stacks_of(ev: pd.DataFrame, profile, rank, by_rank, root_label) -> pd.DataFrame:
    """Rows ``rank``, ``op_id``, ``stream``, ``step``, ``value`` summed into
    the rows of :func:`stacks`; ``root_label(step)`` names the root frame
    of each (rank, op, step) group from its step."""
    paths = op_paths(profile.ops)
    # The root frame is named once per distinct step, and events are summed
    # per (rank, op, root frame), not per step: a 10 M-event profile has ~8k
    # steps per rank, and grouping by step made 3.6 M groups (16 s for its
    # device tree on the 2-core VM; 1.6 s this way).
    codes, uniq = pd.factorize(ev["step"].to_numpy())
    names = np.asarray(root_label(pd.Series(uniq, dtype="int64")), dtype=object)
    label = names[codes] if len(uniq) else np.array([], dtype=object)
    ev = pd.DataFrame({"rank": ev["rank"].to_numpy(), "op_id": ev["op_id"].to_numpy(),
                       "root": label, "value": ev["value"].to_numpy(),
                       "comm": ev["stream"].to_numpy() != 0})
    g = ev.groupby(["rank", "op_id", "root"], sort=False).agg(
        value=("value", "sum"), comm=("comm", "any")).reset_index()
    g = g.merge(paths, on=["rank", "op_id"], how="left")
    missing = g["path"].isna()
    if missing.any():
        g.loc[missing, "path"] = g.loc[missing, "op_id"].map(
            lambda o: ("(unregistered op)", f"op {o}") if o >= 0 else ("(no op)",))
        g.loc[missing, "cls"] = OTHER
    g.loc[g["comm"], "cls"] = COMM
    g["stack"] = [(s,) + p for s, p in zip(g["root"], g["path"])]
    g["rank"] = g["rank"] if (by_rank or rank is not None) else -2
    out = g.groupby(["rank", "stack", "cls"], sort=False)["value"].sum().reset_index()
    return out[out["value"] > 0].reset_index(drop=True)


def _comm_table_stacks(profile, rank, step, per_step, by_rank) -> pd.DataFrame:
    c = profile.comms
    if rank is not None:
        c = c[c["rank"] == rank]
    if step is not None:
        c = c[c["step"] == step]
    label = _step_label(c["step"], per_step or step is not None, _steps_of(profile, rank))
    df = pd.DataFrame({"rank": c["rank"] if (by_rank or rank is not None) else -2,
                       "stack": [(s, "collectives", str(kd)) for s, kd in zip(label, c["kind"])],
                       "cls": COMM, "value": c["dur_ns"]})
    out = df.groupby(["rank", "stack", "cls"], sort=False)["value"].sum().reset_index()
    return out[out["value"] > 0].reset_index(drop=True)


@dataclass
class Frame:
    """A node of the frame tree: ``value`` is the sum over its subtree (only
    leaves carry their own value); ``cls`` is the op class holding most of it."""
    name: str
    value: int = 0
    cls: str = OTHER
    children: list["Frame"] = field(default_factory=list)

    def child(self, name: str) -> "Frame":
        for c in self.children:
            if c.name == name:
                return c
        c = Frame(name)
        self.children.append(c)
        return c

    def walk(self, depth: int = 0):
        yield depth, self
        for c in self.children:
            yield from c.walk(depth + 1)


def tree(rows: pd.DataFrame, name: str = "all") -> Frame:
    """The frame tree of :func:`stacks` rows (one rank or merged): a root named
    ``name`` whose children are the stacks' first frames.  Children are ordered
    by value, largest first."""
    root = Frame(name)
    by_cls: dict[int, dict[str, int]] = {}
    for stack, cls, value in rows[["stack", "cls", "value"]].itertuples(index=False):
        node = root
        chain = [root]
        for part in stack:
            node = node.child(part)
            chain.append(node)
        for n in chain:
            n.value += int(value)
            d = by_cls.setdefault(id(n), {})
            d[cls] = d.get(cls, 0) + int(value)
    for _, n in root.walk():
        d = by_cls.get(id(n))
        if d:
            n.cls = max(d.items(), key=lambda kv: kv[1])[0]
        n.children.sort(key=lambda c: (-c.value, c.name))
    return root


def fold_thin(root: Frame, min_share: float, total: Optional[int] = None) -> Frame:
    """A copy of the tree in which, under each parent, the children below
    ``min_share`` of ``total`` (default: the root's value) are folded into one
    frame ``+N more``."""
    total = root.value if total is None else total
    limit = min_share * total

    def fold(f: Frame) -> Frame:
        return Frame(f.name, f.value, f.cls,
                     [fold(c) for c in fold_children(f.children, limit)])

    return fold(root)


def fold_children(children: list[Frame], limit: float) -> list[Frame]:
    """``children`` with those below ``limit`` replaced by one frame
    ``+N more`` (their summed value, class ``other``) at the end; a lone thin
    child with no kept sibling stays itself (folding it would only rename it)."""
    keep = [c for c in children if c.value >= limit]
    thin = [c for c in children if c.value < limit]
    if not thin or (len(thin) == 1 and not keep):
        return list(children)
    return keep + [Frame(f"+{len(thin)} more", sum(c.value for c in thin), OTHER)]


def focus(root: Frame, scope: str) -> Frame:
    """The subtrees whose path contains the frames of ``scope`` (``net/conv1``,
    an op type or an op name), merged into one tree rooted at ``scope``.
    Raises :class:`MsprofError` when no frame matches."""
    want = [p for p in scope.split("/") if p]
    if not want:
        raise MsprofError("--focus needs a scope, such as net/conv1")
    out = Frame(scope.strip("/"))
    found = False

    def merge(dst: Frame, src: Frame) -> None:
        dst.value += src.value
        for c in src.children:
            d = dst.child(c.name)
            d.cls = c.cls
            merge(d, c)

    def visit(f: Frame, path: list[str]) -> None:
        nonlocal found
        path = path + [f.name]
        if path[-len(want):] == want:
            found = True
            if not out.children and out.value == 0:
                out.cls = f.cls
            merge(out, f)
            return
        for c in f.children:
            visit(c, path)

    for c in root.children:
        visit(c, [])
    if not found:
        raise MsprofError(f"no frame matches --focus {scope!r}")
    for _, n in out.walk():
        n.children.sort(key=lambda c: (-c.value, c.name))
    return out


def trees(profile, metric: str = "device", rank: Optional[int] = None,
          side_by_side: bool = False, step: Optional[int] = None, per_step: bool = False,
          focus_scope: Optional[str] = None, min_share: float = 0.0) -> list[tuple[str, Frame]]:
    """(title, tree) pairs ready to draw: one per rank with ``side_by_side``,
    else one (``rank`` or all ranks merged)."""
    rows = stacks(profile, metric, rank=rank, step=step, per_step=per_step,
                  by_rank=side_by_side and rank is None)
    if side_by_side and rank is None:
        groups = [(f"rank {r}", rows[rows["rank"] == r]) for r in sorted(rows["rank"].unique())]
    else:
        groups = [(f"rank {rank}" if rank is not None else "all ranks", rows)]
    out = []
    for title, g in groups:
        t = tree(g, title)
        if focus_scope:
            t = focus(t, focus_scope)
            title = f"{title} › {t.name}"
        out.append((title, t))
    grand = max((t.value for _, t in out), default=0)
    if min_share > 0:
        out = [(title, fold_thin(t, min_share, grand)) for title, t in out]
    return out


def folded_lines(rows: pd.DataFrame, rank_frames: bool = True) -> Iterable[str]:
    """``frame;frame;... count`` lines of :func:`stacks` rows (``;`` inside a
    frame name becomes ``:``).  With ``rank_frames``, rows of a kept rank get a
    ``rank N`` root frame."""
    for r, stack, value in rows[["rank", "stack", "value"]].itertuples(index=False):
        parts = ([f"rank {r}"] if rank_frames and r >= 0 else []) + list(stack)
        yield ";".join(p.replace(";", ":") for p in parts) + f" {int(value)}"
