"""The :class:`Profile` facade: one profile's meta and tables, and the
analyses as methods, each delegating to the pure function of its module.

``load(path)`` opens a profile directory (or a job directory, or several
node directories merged by rank) through :mod:`msprof.analysis.load`, which
validates it against docs/FORMAT.md: every mistake is one
:class:`~msprof.errors.MsprofError` line.  Tables are read when first used.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable

import pandas as pd

from msprof.analysis import between_steps as _between
from msprof.analysis import breakdown as _breakdown
from msprof.analysis import comm as _comm
from msprof.analysis import contention as _contention
from msprof.analysis import critical_path as _cpath
from msprof.analysis import findings as _findings
from msprof.analysis import flame as _flame
from msprof.analysis import hostbound as _hostbound
from msprof.analysis import imbalance as _imbalance
from msprof.analysis import memory as _memory
from msprof.analysis import memory_steps as _memory_steps
from msprof.analysis import opstats as _opstats
from msprof.analysis import pipeline as _pipeline
from msprof.analysis import report as _report
from msprof.analysis import summary_stats as _summary
from msprof.analysis.load import JOB_FILE, PathLike, open_dirs, read_table
from msprof.errors import MsprofError

__all__ = ["JOB_FILE", "Profile", "load"]

def _needs_trace(method):
    """An analysis of the kernel or pool timeline: a summary-mode profile
    has none, and an empty timeline would read as an idle device, so it is
    refused in one line instead."""
    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        if self.summary_mode:
            raise MsprofError(f"{method.__name__} needs a trace-mode profile; "
                              f"{', '.join(self.meta.get('sources') or ['this one'])} was "
                              "recorded with --mode summary (per-operator totals only)")
        return method(self, *args, **kwargs)
    return checked


class Profile:
    """One profile: ``meta`` (the merged meta.json) and the tables as pandas
    DataFrames, plus the analyses as methods.

    Tables: ``kernels``, ``ops``, ``memory``, ``comms``, ``steps``,
    ``devices``, ``cpu_waits``, ``blocked``, ``cpu_time``, ``kernel_summary``,
    ``memory_summary`` (read on first use, cached).  ``ranks`` lists the
    ranks; ``summary_mode`` says whether kernels and pool events were folded
    into the summary tables instead of recorded one by one.
    """

    def __init__(self, meta: dict, paths: dict[str, list[Path]]):
        self.meta = meta
        self._paths = paths
        self._cache: dict[str, pd.DataFrame] = {}
        self._memo: dict[tuple, object] = {}

    def _once(self, key: tuple, compute):
        """Analyses used by several others are computed once per profile
        (callers must not modify the frames they get)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def __repr__(self) -> str:
        return f"<Profile {', '.join(self.meta.get('sources', []))} ranks={self.ranks}>"

    def table(self, name: str) -> pd.DataFrame:
        """A table by name (one of :data:`TABLES`)."""
        if name not in self._paths:
            raise MsprofError(f"no table {name!r} in profile (tables: {', '.join(self._paths)})")
        if name not in self._cache:
            self._cache[name] = read_table(name, self._paths[name])
        return self._cache[name]

    kernels = property(lambda self: self.table("kernels"), doc="Executed kernels.")
    ops = property(lambda self: self.table("ops"), doc="Registered operators.")
    memory = property(lambda self: self.table("memory"), doc="Pool allocations and frees.")
    comms = property(lambda self: self.table("comms"), doc="Collectives.")
    steps = property(lambda self: self.table("steps"), doc="Training steps.")
    devices = property(lambda self: self.table("devices"), doc="Device processes.")
    cpu_waits = property(lambda self: self.table("cpu_waits"),
                         doc="Times a runtime thread was runnable but waited for a CPU.")
    blocked = property(lambda self: self.table("blocked"),
                       doc="Times a runtime thread slept (a lock, the GIL, I/O) until woken.")
    cpu_time = property(lambda self: self.table("cpu_time"),
                        doc="Time each runtime thread ran on each CPU.")
    kernel_summary = property(lambda self: self.table("kernel_summary"),
                              doc="Summary mode: kernels folded per rank, process, operator "
                                  "and stream (empty in trace mode).")
    memory_summary = property(lambda self: self.table("memory_summary"),
                              doc="Summary mode: pool events folded per rank, process and "
                                  "operator (empty in trace mode).")

    @property
    def summary_mode(self) -> bool:
        """Whether kernels and pool events were folded into per-operator
        aggregates (``msprof run --mode summary``): ``kernels`` and
        ``memory`` are empty, ``kernel_summary`` and ``memory_summary`` hold them."""
        return self.meta.get("mode") == "summary"

    @property
    def ranks(self) -> list[int]:
        """Ranks named by meta.json, or else seen in the steps/kernels tables
        (kernel_summary in summary mode)."""
        ranks = {r["rank"] for r in self.meta.get("ranks") or [] if isinstance(r, dict) and "rank" in r}
        if not ranks:
            kernels = self.kernel_summary if self.summary_mode else self.kernels
            ranks = set(self.steps["rank"].unique()) | set(kernels["rank"].unique())
        return sorted(int(r) for r in ranks)

    def check_rank(self, rank: int | None) -> None:
        """Raises a one-line error when ``rank`` is not in this profile."""
        if rank is not None and rank not in self.ranks:
            listed = ", ".join(map(str, self.ranks)) or "none"
            raise MsprofError(f"no rank {rank} in this profile (ranks: {listed})")

    # Analyses: thin wrappers over the pure functions of their modules.

    @property
    def _k(self) -> pd.DataFrame:
        """Kernels joined with their operators (and in-step time), once."""
        return self._once(("kernels+ops",), lambda: _opstats.prepared(
            self.kernels, self.ops, self.steps))

    def op_stats(self, rank: int | None = None, per_rank: bool = False) -> pd.DataFrame:
        """Per-operator statistics (see :func:`msprof.analysis.opstats.op_stats`;
        of a summary-mode profile :func:`msprof.analysis.summary_stats.op_stats`)."""
        self.check_rank(rank)
        if self.summary_mode:
            return self._once(("ops", rank, per_rank), lambda: _summary.op_stats(
                self.kernel_summary, self.ops, self.steps, rank=rank, per_rank=per_rank)).copy()
        return self._once(("ops", rank, per_rank), lambda: _opstats.op_stats(
            self._k, self.ops, self.steps, rank=rank, per_rank=per_rank,
            cpu_waits=self.cpu_waits, blocked=self.blocked)).copy()

    def type_stats(self, rank: int | None = None, per_rank: bool = False) -> pd.DataFrame:
        """Statistics per operator type (:func:`msprof.analysis.opstats.type_stats`,
        or :func:`msprof.analysis.summary_stats.type_stats`)."""
        self.check_rank(rank)
        if self.summary_mode:
            return _summary.type_stats(self.kernel_summary, self.ops, self.steps, rank=rank,
                                       per_rank=per_rank)
        return _opstats.type_stats(self._k, self.ops, self.steps, rank=rank, per_rank=per_rank,
                                   cpu_waits=self.cpu_waits, blocked=self.blocked)

    def scope_stats(self, rank: int | None = None, per_rank: bool = False,
                    depth: int | None = None) -> pd.DataFrame:
        """Self and subtree time per scope prefix (:func:`msprof.analysis.opstats.scope_stats`,
        or :func:`msprof.analysis.summary_stats.scope_stats`)."""
        self.check_rank(rank)
        if self.summary_mode:
            return _summary.scope_stats(self.kernel_summary, self.ops, rank=rank,
                                        per_rank=per_rank, depth=depth)
        return _opstats.scope_stats(self._k, self.ops, rank=rank, per_rank=per_rank, depth=depth)

    @_needs_trace
    def step_breakdown(self, rank: int | None = None) -> pd.DataFrame:
        """Per rank and step: busy, host gaps, idle, memory peak
        (:func:`msprof.analysis.breakdown.step_breakdown`)."""
        self.check_rank(rank)
        return self._both(rank)[0].copy()

    def _both(self, rank):
        return self._once(("steps", rank), lambda: _breakdown.breakdown_and_gaps(
            self.kernels, self.steps, self.memory, self.comms, rank=rank,
            cpu_waits=self.cpu_waits))

    @_needs_trace
    def device_breakdown(self, rank: int | None = None) -> pd.DataFrame:
        """Per rank, the mean step's breakdown
        (:func:`msprof.analysis.breakdown.device_breakdown`)."""
        self.check_rank(rank)
        return _breakdown.device_breakdown(self.step_breakdown(rank), self.memory, rank=rank)

    @_needs_trace
    def gaps(self, rank: int | None = None) -> pd.DataFrame:
        """Every stretch of a step with no kernel running
        (:func:`msprof.analysis.breakdown.gaps`)."""
        self.check_rank(rank)
        return self._both(rank)[1].copy()

    # Communication (:mod:`msprof.analysis.comm`).

    def collectives(self) -> pd.DataFrame:
        """Every collective instance matched across ranks, with skew and
        bandwidth (:func:`msprof.analysis.comm.collectives`)."""
        return self._once(("coll",), lambda: _comm.collectives(self.comms)).copy()

    def messages(self) -> pd.DataFrame:
        """Send/recv pairs (:func:`msprof.analysis.comm.messages`)."""
        return _comm.messages(self.comms)

    def comm_stats(self, rank: int | None = None) -> pd.DataFrame:
        """Per collective kind and size: count, time, algbw, busbw, wait, skew
        (:func:`msprof.analysis.comm.collective_stats`)."""
        self.check_rank(rank)
        return _comm.collective_stats(self.comms, rank=rank)

    def comm_matrix(self) -> pd.DataFrame:
        """Rank x rank bytes, time and bandwidth (:func:`msprof.analysis.comm.matrix`)."""
        return _comm.matrix(self.comms)

    @_needs_trace
    def comm_ops(self, rank: int | None = None) -> pd.DataFrame:
        """Exposed time per communication operator per step
        (:func:`msprof.analysis.comm.by_op`)."""
        self.check_rank(rank)
        return self._by_op(rank, False).copy()

    def _by_op(self, rank, per_rank):
        k = self._k if rank is None else self._k[self._k["rank"] == rank]
        return self._once(("byop", rank, per_rank), lambda: _comm.by_op(
            k, self.ops, self.comms, self.steps, per_rank=per_rank))

    @_needs_trace
    def comm_ops_per_rank(self, rank: int | None = None) -> pd.DataFrame:
        """:meth:`comm_ops` per rank (column ``rank``)."""
        self.check_rank(rank)
        return self._by_op(rank, True).copy()

    @_needs_trace
    def overlap(self, rank: int | None = None) -> pd.DataFrame:
        """Comm/compute overlap ratio per rank (:func:`msprof.analysis.comm.overlap`)."""
        return _comm.overlap(self.step_breakdown(rank))

    @_needs_trace
    def between_steps(self, rank: int | None = None) -> pd.DataFrame:
        """Per rank and step, the time until the next step and where the host
        spent it (:func:`msprof.analysis.between_steps.between_steps`)."""
        self.check_rank(rank)
        return self._once(("between", rank), lambda: _between.between_steps(
            self.steps, self.kernels, self.blocked, self.cpu_waits, rank=rank)).copy()

    @_needs_trace
    def memory_boundaries(self, rank: int | None = None) -> pd.DataFrame:
        """Bytes in use at each step's begin and end
        (:func:`msprof.analysis.memory_steps.boundaries`)."""
        self.check_rank(rank)
        return self._once(("mem_bounds", rank), lambda: _memory_steps.boundaries(
            self.memory, self.steps, rank=rank)).copy()

    @_needs_trace
    def memory_held(self, rank: int | None = None) -> pd.DataFrame:
        """Allocations made after the first step and held at the end of the
        last (:func:`msprof.analysis.memory_steps.held`)."""
        self.check_rank(rank)
        m = self.memory if rank is None else self.memory[self.memory["rank"] == rank]
        return _memory_steps.held(m, self.ops, self.memory_boundaries(rank))

    # Imbalance (:mod:`msprof.analysis.imbalance`).

    @_needs_trace
    def imbalance(self) -> pd.DataFrame:
        """Load-imbalance index per step (:func:`msprof.analysis.imbalance.per_step`)."""
        return _imbalance.per_step(self.step_breakdown())

    def cpu_holders(self) -> pd.DataFrame:
        """Per rank, who held the cores its compute threads waited for
        (:func:`msprof.analysis.contention.holders`)."""
        return _contention.holders(self.cpu_waits, self.kernels, self.steps, self.meta)

    def compute_cpus(self) -> pd.DataFrame:
        """Per rank and CPU, the time its compute threads ran there
        (:func:`msprof.analysis.contention.compute_cpus`)."""
        return self._once(("compute_cpus",), lambda: _contention.compute_cpus(
            self.cpu_time, self.kernels)).copy()

    @_needs_trace
    def slow_ranks(self) -> pd.DataFrame:
        """Compute excess and the waits it causes, per rank
        (:func:`msprof.analysis.imbalance.ranks`)."""
        return self._once(("slow",), lambda: _imbalance.ranks(self.step_breakdown(), self.comms)).copy()

    def links(self) -> pd.DataFrame:
        """Point-to-point bandwidth per pair (:func:`msprof.analysis.imbalance.links`)."""
        return _imbalance.links(self.comms)

    def groups(self) -> pd.DataFrame:
        """Bus bandwidth per communication group (:func:`msprof.analysis.imbalance.groups`)."""
        return _imbalance.groups(self.comms)

    # Pipeline (:mod:`msprof.analysis.pipeline`).

    @_needs_trace
    def bubble_waits(self) -> pd.DataFrame:
        """Every send/recv wait with its phase (:func:`msprof.analysis.pipeline.bubble_waits`)."""
        return self._once(("bw",), lambda: _pipeline.bubble_waits(
            self.kernels, self.comms, self.steps)).copy()

    @_needs_trace
    def pipeline(self) -> pd.DataFrame:
        """Bubble per stage (:func:`msprof.analysis.pipeline.stage_stats`)."""
        return _pipeline.stage_stats(self.step_breakdown(), self.comms, self.bubble_waits())

    @_needs_trace
    def bubble_causes(self) -> pd.DataFrame:
        """Bubble per stage, phase and peer (:func:`msprof.analysis.pipeline.causes`)."""
        return _pipeline.causes(self.bubble_waits(), self.steps.groupby("rank").size())

    # Memory (:mod:`msprof.analysis.memory`).

    @_needs_trace
    def memory_timeline(self, rank: int | None = None, points: int = 200) -> pd.DataFrame:
        """Bytes in use over time (:func:`msprof.analysis.memory.timeline`)."""
        self.check_rank(rank)
        return _memory.timeline(self.memory, rank=rank, points=points)

    @_needs_trace
    def memory_peaks(self, rank: int | None = None) -> pd.DataFrame:
        """Peak per device (:func:`msprof.analysis.memory.peaks`)."""
        self.check_rank(rank)
        return _memory.peaks(self.memory, rank=rank)

    @_needs_trace
    def live_at_peak(self, rank: int | None = None) -> pd.DataFrame:
        """What was live at each peak (:func:`msprof.analysis.memory.live_at_peak`)."""
        self.check_rank(rank)
        return _memory.live_at_peak(self.memory, self.ops, rank=rank)

    @_needs_trace
    def leaks(self, rank: int | None = None) -> pd.DataFrame:
        """Allocations never freed, leaks first (:func:`msprof.analysis.memory.never_freed`)."""
        self.check_rank(rank)
        return self._once(("leaks", rank), lambda: _memory.never_freed(
            self.memory, self.ops, self.steps, rank=rank)).copy()

    # Memory of a summary-mode profile (:mod:`msprof.analysis.summary_stats`).

    def summary_memory_peaks(self, rank: int | None = None) -> pd.DataFrame:
        """Per rank, the pool's peak and the operator whose allocation reached
        it, from ``memory_summary`` (:func:`msprof.analysis.summary_stats.memory_peaks`)."""
        self.check_rank(rank)
        return _summary.memory_peaks(self.memory_summary, self.ops, rank=rank)

    def summary_memory_by_op(self, rank: int | None = None) -> pd.DataFrame:
        """Per rank and operator, bytes allocated, freed and still held at the
        end (:func:`msprof.analysis.summary_stats.memory_by_op`)."""
        self.check_rank(rank)
        return _summary.memory_by_op(self.memory_summary, self.ops, rank=rank)

    # Host-bound (:mod:`msprof.analysis.hostbound`).

    @_needs_trace
    def launch_stats(self, rank: int | None = None) -> pd.DataFrame:
        """Queue delay and tiny kernels per operator (:func:`msprof.analysis.hostbound.launch_stats`)."""
        self.check_rank(rank)
        return _hostbound.launch_stats(self._k, self.ops, rank=rank)

    @_needs_trace
    def host_summary(self, rank: int | None = None) -> pd.DataFrame:
        """Launch cost, tiny kernels, host gaps per rank (:func:`msprof.analysis.hostbound.rank_summary`)."""
        self.check_rank(rank)
        return _hostbound.rank_summary(self.kernels, self.step_breakdown(rank), rank=rank)

    @_needs_trace
    def host_gaps(self, rank: int | None = None) -> pd.DataFrame:
        """Host-bound gaps per operator that ended them (:func:`msprof.analysis.hostbound.host_gaps_by_op`)."""
        steps = self.step_breakdown(rank)
        return _hostbound.host_gaps_by_op(self.gaps(rank), self.ops, len(steps))

    # Critical path (:mod:`msprof.analysis.critical_path`).

    @_needs_trace
    def critical_path(self, step: int | None = None) -> pd.DataFrame:
        """Segments of one step's critical path across ranks
        (:func:`msprof.analysis.critical_path.path`)."""
        return self._once(("cp", step), lambda: _cpath.path(
            self.kernels, self.ops, self.comms, self.steps, step=step)).copy()

    @_needs_trace
    def findings(self, rank: int | None = None) -> list[dict]:
        """Bottlenecks, most important first (:mod:`msprof.analysis.findings`)."""
        self.check_rank(rank)
        return _findings.findings(self, rank=rank)

    def report(self, rank: int | None = None, top: int | None = None,
               sections=None) -> dict:
        """Everything ``msprof report`` shows, as data (:mod:`msprof.analysis.report`);
        ``sections`` picks some of :data:`msprof.analysis.report.SECTIONS`."""
        self.check_rank(rank)
        return _report.build(self, rank=rank, top=top, sections=sections)

    def flame(self, metric: str = "device", rank: int | None = None, step: int | None = None,
              per_step: bool = False, focus: str | None = None,
              min_share: float = 0.0) -> "_flame.Frame":
        """The frame tree ``msprof flame`` draws, for one rank or all ranks
        merged: a :class:`~msprof.analysis.flame.Frame` (``name``, ``value``,
        ``cls``, ``children``, ``walk()``) along step -> scopes -> op type ->
        op; ``metric`` is one of :data:`msprof.analysis.flame.METRICS`
        (:func:`msprof.analysis.flame.trees`)."""
        ((_, root),) = _flame.trees(self, metric, rank=rank, step=step, per_step=per_step,
                                    focus_scope=focus, min_share=min_share)
        return root


def load(path: PathLike | Iterable[PathLike]) -> Profile:
    """Opens a profile directory, or several (one per node) as one profile.

    A job directory of a multi-machine run (``msprof run --hosts``: job.json
    and one profile directory per node) opens as its nodes merged by rank;
    ``meta["job"]`` is its job.json, whose command and exit status are the
    profile's.  Raises :class:`~msprof.errors.MsprofError` with one line for
    anything that is not a readable profile of a supported format version.
    """
    return Profile(*open_dirs(path))
