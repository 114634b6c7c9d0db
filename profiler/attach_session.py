"""Profiling processes that are already running (``msprof attach``).

The runtime's probe sites are in every process that imported it; only
their semaphores are down.  The eBPF program is loaded as for ``msprof
run``, its map of traced processes seeded with the targets, and each probe
attached for each target alone (a uprobe with a pid and the semaphore's
offset): the kernel raises the semaphores in those processes only, and
lowers them again when the probes are closed, which leaves each process as
it was.  What the process announced before the probes came (its device,
the operators of its compiled graphs, each thread's staging area) it
announces again when asked (a word of its memory, written once every probe
is in place; runtime/_usdt.c), at its next step or hand-over of staged
records; the first step is the first whose
begin the probes saw, and the step in progress when they are released
ends the profile unrecorded.
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np

from msprof.errors import MsprofError
from msprof.probes import events as ev
from msprof.profiler import decode
from msprof.profiler.availability import unavailable_reason
from msprof.profiler.session import (DRAIN_MIN_S, MODES, RunResult, RunStats, _Collector,
                                     _folded, drain_while)
from msprof.profiler.targets import Target, find_targets, request_announcements
from msprof.profiler.outdir import OutputDir
from msprof.profiler.writer import ProfileWriter

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Detaching: the step and collective probes go first; the kernels of the
# last steps recorded are still staged in their stream's area, which is
# handed over when it holds 64 kernels (a synchronize finding the stream
# done flushes nothing): about 1.5 steps of the demo.  The staged records'
# probe stays until a kernel of a later step has come from every process,
# or this long (steps of up to a second).
STEP_PROBES = ("step_begin", "step_end", "comm_begin", "comm_end")
DETACH_GRACE_S = 2.0


class _AttachCollector(_Collector):
    """Also follows, per process, the last step recorded and the latest
    step a kernel came from (for the detach)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.last_step: dict[int, int] = {}       # pid -> last step recorded
        self.kernel_step: dict[int, int] = {}     # pid -> latest step of a kernel seen

    def take(self, meta, events) -> None:
        for kind, latest in ((ev.STEP, self.last_step), (ev.KERNEL, self.kernel_step)):
            rows = events[events["type"] == kind]
            for pid in np.unique(rows["pid"]):
                step = int(rows["a3"][rows["pid"] == pid].max())
                latest[int(pid)] = max(step, latest.get(int(pid), step))
        super().take(meta, events)

    def kernels_caught_up(self) -> bool:
        """Every process's kernels of its last recorded step were handed over."""
        return all(self.kernel_step.get(pid, -1) > step for pid, step in self.last_step.items())


def _alive(pid: int) -> bool:
    """Running (a zombie, ended but not yet reaped by its parent, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _backend(targets: list[Target], mode: str):
    libraries = sorted({t.library for t in targets})
    if len(libraries) > 1:
        raise MsprofError("the processes run different installations of msprof's runtime "
                          f"({', '.join(libraries)}); attach to them one installation at a time")
    reason = unavailable_reason()
    if reason is not None:
        raise MsprofError(f"msprof attach needs the eBPF backend, unavailable here ({reason}); "
                          "see 'msprof doctor'", exit_code=3)
    from msprof.profiler.ebpf import EbpfBackend
    try:
        return EbpfBackend(mode=mode, library=libraries[0], pids=[t.pid for t in targets])
    except MsprofError:
        gone = [t.pid for t in targets if not _alive(t.pid)]
        if gone:
            raise MsprofError(f"process {gone[0]} ended before its probes were attached") from None
        raise


def profile_attached(pids: list[int], out: str, *, duration: float | None = None,
                     mode: str = "trace", on_tick=None, on_attached=None) -> RunResult:
    """Profile the running processes ``pids`` (and the runtime processes
    below them) until ``duration`` seconds have passed, a SIGINT or SIGTERM
    comes, or every target has ended; ``on_attached(targets)`` is called
    once the probes are live."""
    if mode not in MODES:
        raise MsprofError(f"unknown mode {mode!r} (choose trace or summary)")
    if duration is not None and duration <= 0:
        raise MsprofError(f"--duration must be more than 0 seconds, not {duration:g}")
    targets = find_targets(pids)
    out_dir = OutputDir(out)               # new, exclusive, locked: as msprof run's
    try:
        backend = _backend(targets, mode)
    except BaseException:
        out_dir.discard()
        raise
    stats = RunStats()
    try:
        writer = ProfileWriter(out_dir, {
            "command": list(targets[0].command), "argv": list(targets[0].command),
            "backend": backend.name, "mode": mode, "probes": backend.attached,
            "nprocs": len(targets), "fallback_reason": None, "collector_pid": os.getpid(),
            "start_ns": time.monotonic_ns(), "ranks": [], "pids": [], "lost_events": 0,
            "exit_status": None, "attached": True,
            "attached_pids": [t.pid for t in targets],
        })
        collector = _AttachCollector(writer, stats, mode)
        collector.pids.update(t.pid for t in targets)
        for t in targets:                  # every probe is in place: announce again
            request_announcements(t.pid, t.library)
        if on_attached:
            on_attached(targets)
        stop = []
        previous = {s: signal.signal(s, lambda signum, _f: stop.append(signum))
                    for s in STOP_SIGNALS}
        try:
            deadline = None if duration is None else time.monotonic() + duration
            drain_while(backend, collector, writer, stats,
                        lambda: not stop and (deadline is None or time.monotonic() < deadline)
                        and any(_alive(t.pid) for t in targets), on_tick)
            backend.detach(STEP_PROBES)
            detached_ns = time.monotonic_ns()
            grace = time.monotonic() + DETACH_GRACE_S
            while not collector.kernels_caught_up() and time.monotonic() < grace \
                    and not writer.stopped and any(_alive(t.pid) for t in targets):
                collector.take(*backend.poll())
                time.sleep(DRAIN_MIN_S)
            backend.detach()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        collector.take(*backend.poll())
        collector.take(*backend.poll())
        collector.flush()
        writer.add(decode.decode_cpu_time(backend.cpu_time(), collector.ranks))
        folded = 0
        if collector.summary is not None:
            collector.summary.add(*backend.summary())
            tables = collector.summary.tables(collector.ranks)
            writer.add(tables)
            folded = _folded(tables)
        lost = backend.lost()
        stats.lost = sum(lost.values())
        ranks = sorted(collector.rank_rows.values(), key=lambda r: r["rank"])
        for r in ranks:
            r["host"] = writer.meta["host"]
        running = [t.pid for t in targets if _alive(t.pid)]
        # The job's exit status is known only when it ended under the probes.
        status = None if running else collector.exits.get(targets[0].pid)
        writer.close(
            end_ns=time.monotonic_ns(), detached_ns=detached_ns, exit_status=status,
            ranks=ranks, world_size=max((r["world_size"] for r in ranks), default=0),
            pids=sorted(collector.pids),
            exits=[{"pid": p, "exit_status": st} for p, st in sorted(collector.exits.items())],
            lost_events=stats.lost, lost_by_cause=lost, events=stats.events,
            folded_events=folded, still_running=running,
            failed_ranks=[{**r, "exit_status": collector.exits[r["pid"]]} for r in ranks
                          if collector.exits.get(r["pid"], 0) != 0])
        stats.stopped = writer.stopped
        return RunResult(out, status or 0, backend.name, None, stats, writer.meta)
    finally:
        backend.close()
        out_dir.release()
