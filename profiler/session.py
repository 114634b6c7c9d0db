"""One profiled run: attach, launch the script, drain until it ends, persist.

``profile_run`` is what ``msprof run`` does once its options are parsed:
choose a backend, open the profile directory, start the script (one
process, or N ranks through mpiexec), drain the backend (see next_interval) into
the writer, pass signals on to the script, and close the directory with the
script's exit status, the events counted and every lost event.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from msprof.errors import MsprofError
from msprof.probes import events as ev
from msprof.profiler import decode, frameworks
from msprof.profiler.availability import unavailable_reason
from msprof.profiler.lifeline import die_with_parent
from msprof.profiler.outdir import OutputDir
from msprof.profiler.privileges import TargetUser, check_output_place, give_to
from msprof.profiler.stopping import SignalForwarder
from msprof.profiler.summary import Summarizer
from msprof.profiler.writer import ProfileWriter

# The drain interval adapts to the event rate: every wake-up of the collector
# costs CPU that the training (two cores here) would rather have, so it
# sleeps up to DRAIN_MAX_S while batches are small, and comes back to
# DRAIN_MIN_S as soon as a batch fills a sizeable part of the ring.
# DRAIN_MAX_S bounds what arrives unseen: one thread handing over staged
# records reaches ~6 M records/s, which fills the 16 MiB ring (262k
# records) in ~40 ms.
DRAIN_MIN_S = 0.005
DRAIN_MAX_S = 0.02
BUSY_BATCH = 16_384   # records: above this the interval halves
IDLE_BATCH = 2_048    # below this it doubles
DECODE_RECORDS = 65_536   # event records decoded together (a quarter of the ring)...
DECODE_AGE_S = 0.25       # ...or sooner, once the oldest has waited this long
# Ranks on one machine: each is a process of the traced tree (the BPF map of
# traced processes holds MAX_TRACED entries, with room for launchers).
MAX_LOCAL_RANKS = 256
# meta.json is rewritten this often while collecting, so that a profile whose
# collector died names its ranks and says up to when it holds data.
CHECKPOINT_S = 1.0
MODES = ("trace", "summary")


@dataclass
class RunStats:
    """What the progress display and the final summary show."""
    events: int = 0
    lost: int = 0
    ranks: int = 0
    started: float = field(default_factory=time.monotonic)
    rates: list = field(default_factory=list)
    stopped: str | None = None    # why collecting stopped before the script ended

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class RunResult:
    path: str
    exit_status: int
    backend: str
    fallback_reason: str | None
    stats: RunStats
    meta: dict


def script_command(script: str, args: list[str]) -> list[str]:
    """How to start ``script``: with this Python if it is a .py file; a
    name without a slash that is no file here is a command on PATH
    (``msprof run -- python3 -c ...``)."""
    if not os.path.exists(script):
        found = shutil.which(script) if os.sep not in script else None
        if found:
            return [found, *args]
        raise MsprofError(f"script not found: {script}")
    if os.path.isdir(script):
        raise MsprofError(f"not a script: {script} is a directory")
    if script.endswith(".py"):
        return [sys.executable, script, *args]
    if os.access(script, os.X_OK):
        return [os.path.abspath(script), *args]
    raise MsprofError(f"cannot run {script}: not a .py file nor executable")


def mpiexec_path() -> str:
    found = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if found is None:
        raise MsprofError("-n needs mpiexec (pip install mpich mpi4py)")
    return found


def build_command(script: str, args: list[str], nprocs: int) -> list[str]:
    cmd = script_command(script, args)
    if nprocs > 1:
        cmd = [mpiexec_path(), "-n", str(nprocs), *cmd]
    return cmd


def choose_backend(requested: str, staging: str, mode: str = "trace",
                   frameworks: dict[str, str] | None = None):
    """(backend, fallback reason or None)."""
    if requested not in ("auto", "ebpf", "inprocess"):
        raise MsprofError(f"unknown backend {requested!r} (choose auto, ebpf or inprocess)")
    if mode not in MODES:
        raise MsprofError(f"unknown mode {mode!r} (choose trace or summary)")
    if requested == "inprocess":
        from msprof.profiler.inprocess import InprocessBackend
        return InprocessBackend(staging), None
    reason = unavailable_reason()
    if reason is None:
        from msprof.profiler.ebpf import EbpfBackend
        try:
            return EbpfBackend(mode=mode, frameworks=frameworks), None
        except MsprofError as e:
            reason = str(e)
    if requested == "ebpf":
        raise MsprofError(f"eBPF backend unavailable ({reason}); see 'msprof doctor'", exit_code=3)
    from msprof.profiler.inprocess import InprocessBackend
    return InprocessBackend(staging), reason


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class _Collector:
    """Decodes the drained records into the writer and keeps the counts; in
    summary mode it folds the kernel and pool records it gets (the
    in-process backend's: the eBPF backend folds them in the kernel).

    The ring is drained every few ms, so that it never fills, but decoding
    a batch into Arrow tables costs the same few hundred microseconds of
    fixed work whether it holds ten records or ten thousand: event records
    wait (copied out of the ring) until DECODE_RECORDS of them have come or
    the oldest has waited DECODE_AGE_S, and are decoded together.  Meta
    records are decoded at once: they name the ranks the events map to.  A
    device or operator announced twice (again, to a tracer that came
    later: runtime/_usdt.c) is kept once."""

    def __init__(self, writer: ProfileWriter, stats: RunStats, mode: str = "trace"):
        self.summary = Summarizer() if mode == "summary" else None
        self.writer = writer
        self.stats = stats
        self.ranks = decode.RankMap()
        self.rank_rows: dict[int, dict] = {}
        self.device_kinds: dict[int, int] = {}
        self.pids: set[int] = set()
        self.exits: dict[int, int] = {}
        self._waiting: list = []
        self._waiting_records = 0
        self._oldest = 0.0
        self._announced: set[tuple[int, int, int]] = set()

    def _first_announcements(self, meta):
        keep = np.ones(len(meta), bool)
        for i, (kind, pid, a0) in enumerate(zip(meta["type"], meta["pid"], meta["a0"])):
            if kind in (ev.DEVICE_INIT, ev.OP_REGISTER):     # one per operator, not per event
                key = (int(kind), int(pid), int(a0) if kind == ev.OP_REGISTER else 0)
                keep[i] = key not in self._announced
                self._announced.add(key)
        return meta if keep.all() else meta[keep]

    def take(self, meta, events) -> None:
        if len(meta):
            meta = self._first_announcements(meta)
        if len(meta):
            tables = decode.decode_meta(meta, self.ranks)
            dev = tables.get("devices")
            if dev is not None:
                for row in dev.to_pylist():
                    self.rank_rows[row["pid"]] = {"rank": row["rank"], "pid": row["pid"],
                                                  "world_size": row["world_size"]}
                    self.device_kinds[row["pid"]] = row["kind"]
            self.pids.update(decode.forked_pids(meta))
            self.writer.add(tables)
        if self.summary is not None:
            events = self.summary.take(events)
        self.stats.events += len(meta) + len(events)
        self.stats.ranks = len(self.rank_rows)
        if len(events):
            if not self._waiting:
                self._oldest = time.monotonic()
            self._waiting.append(events)
            self._waiting_records += len(events)
        if self._waiting and (self._waiting_records >= DECODE_RECORDS
                              or time.monotonic() - self._oldest >= DECODE_AGE_S):
            self.flush()

    def flush(self) -> None:
        """Decodes and hands to the writer every event record still waiting."""
        if not self._waiting:
            return
        events = self._waiting[0] if len(self._waiting) == 1 else np.concatenate(self._waiting)
        self._waiting, self._waiting_records = [], 0
        self.writer.add(decode.decode_events(events, self.ranks))
        for pid, ts, status in decode.exited_pids(events):
            self.exits[pid] = status


def failed_ranks(ranks: list[dict], exits: dict[int, int | None], status: int,
                 nprocs: int) -> list[dict]:
    """Ranks that did not exit 0, with their status where it is known.

    A single-process run's rank exits with the script's status.  Otherwise a
    rank's status comes from its EXIT record; a rank with no record at all
    (its end was not seen) counts as failed when the run failed."""
    out = []
    for r in ranks:
        if nprocs == 1:
            st = status
        elif r["pid"] in exits:
            st = exits[r["pid"]]
        else:
            st = None if status != 0 else 0
        if st != 0:
            out.append({**r, "exit_status": st})
    return out


def next_interval(interval: float, batch: int) -> float:
    if batch > BUSY_BATCH:
        return max(DRAIN_MIN_S, interval / 2)
    if batch < IDLE_BATCH:
        return min(DRAIN_MAX_S, interval * 2)
    return interval


def check_nprocs(nprocs: int, limit: int = MAX_LOCAL_RANKS) -> None:
    if nprocs < 1:
        raise MsprofError(f"-n must be at least 1 (got {nprocs})")
    if nprocs > limit:
        raise MsprofError(f"-n {nprocs} is more ranks than one machine can hold here "
                          f"(at most {limit}); spread them with --hosts/--hostfile")


def _folded(tables) -> int:
    """Kernels and pool events a summary holds (each folded, not recorded)."""
    n = 0
    if "kernel_summary" in tables:
        n += sum(tables["kernel_summary"].column("calls").to_pylist())
    if "memory_summary" in tables:
        m = tables["memory_summary"]
        n += sum(m.column("allocs").to_pylist()) + sum(m.column("frees").to_pylist())
    return n


def profile_run(script: str, args: list[str], out: str, *, backend: str = "auto",
                nprocs: int = 1, on_tick=None, mode: str = "trace",
                force: bool = False, user: TargetUser | None = None) -> RunResult:
    """Profile one run of ``script`` on this machine (N ranks via mpiexec)."""
    check_nprocs(nprocs)
    cmd = build_command(script, args, nprocs)
    return profile_command(cmd, out, label=[script, *args], backend=backend,
                           nprocs=nprocs, on_tick=on_tick, mode=mode, force=force, user=user)


def _progress(collector: _Collector, stats: RunStats, host: str) -> dict:
    """What meta.json says of a run still going on (see CHECKPOINT_S)."""
    ranks = sorted(({**r, "host": host} for r in collector.rank_rows.values()),
                   key=lambda r: r["rank"])
    return {"ranks": ranks, "pids": sorted(collector.pids), "events": stats.events,
            "world_size": max((r["world_size"] for r in ranks), default=0)}


def drain_while(backend, collector: _Collector, writer: ProfileWriter, stats: RunStats,
                keep_going, on_tick=None) -> None:
    """Drains ``backend`` into ``collector`` while ``keep_going()`` and the
    profile can still be written (not ``writer.stopped``): the interval
    follows the traffic (next_interval), ``on_tick(stats)`` comes four
    times a second, and meta.json is checkpointed every CHECKPOINT_S, so
    that a collector killed now leaves a profile that says what it holds.
    msprof run and msprof attach both collect through here."""
    last_tick = last_checkpoint = 0.0
    interval = DRAIN_MIN_S
    while keep_going() and not writer.stopped:
        meta, events = backend.poll()
        collector.take(meta, events)
        interval = next_interval(interval, len(events))
        now = time.monotonic()
        if on_tick and now - last_tick >= 0.25:
            stats.lost = sum(backend.lost().values())
            on_tick(stats)
            last_tick = now
        if now - last_checkpoint >= CHECKPOINT_S:
            lost = backend.lost()
            writer.checkpoint(**_progress(collector, stats, writer.meta["host"]),
                              lost_events=sum(lost.values()), lost_by_cause=lost)
            last_checkpoint = now
        time.sleep(interval)


def profile_command(cmd: list[str], out: str, *, label: list[str] | None = None,
                    backend: str = "auto", nprocs: int = 1, on_tick=None,
                    extra_meta: dict | None = None, mode: str = "trace",
                    force: bool = False, user: TargetUser | None = None) -> RunResult:
    """Profile the process tree of ``cmd``; ``on_tick(stats)`` is called while
    it runs.  ``mode``: "trace" (every event) or "summary" (kernels and pool
    events as per-operator aggregates).  ``out`` must not exist, or, with
    ``force``, hold a profile (see :class:`~msprof.profiler.outdir.OutputDir`).
    ``user``: run ``cmd`` as that user, and hand them the profile once
    written (see profiler/privileges.py).

    When the profile cannot be written any more (a full disk), collecting
    stops: the probes are released, ``stats.stopped`` says why (and
    ``on_tick`` is called at once), the script runs on to its end, and the
    profile keeps what was written."""
    if user is not None:
        check_output_place(user, out)
    out_dir = OutputDir(out, force=force)     # refused before the BPF program compiles
    try:
        adapters = frameworks.prepare(cmd, backend, other_user=user is not None)
        for note in adapters.notes:
            print(f"msprof: {note}", file=sys.stderr)
        chosen, fallback = choose_backend(backend, os.path.join(out, ".inprocess"), mode,
                                          adapters.libraries)
    except BaseException:
        out_dir.discard()
        raise
    stats = RunStats()
    writer = None
    try:
        writer = ProfileWriter(out_dir, {
            "command": label or cmd, "argv": cmd, "backend": chosen.name,
            "mode": mode, "probes": chosen.attached, "nprocs": nprocs,
            "fallback_reason": fallback,
            "collector_pid": getattr(chosen, "kernel_pid", os.getpid()),
            "start_ns": time.monotonic_ns(), "ranks": [], "pids": [],
            "lost_events": 0, "exit_status": None,
            "frameworks_loaded": sorted(adapters.libraries), **(extra_meta or {}),
        })
        collector = _Collector(writer, stats, mode)
        env = {**os.environ, **adapters.env, **chosen.child_env(),
               **(user.environment() if user else {})}
        staging = os.path.join(out, ".inprocess")
        if user is not None and os.path.isdir(staging):   # the script writes its records there
            os.chown(staging, user.uid, user.gid)
        try:
            child = subprocess.Popen(cmd, env=env, process_group=0,
                                     preexec_fn=die_with_parent(),
                                     **(user.popen_args() if user else {}))
        except OSError as e:
            who = f" as {user.name}" if user else ""
            raise MsprofError(f"cannot start {cmd[0]}{who}: {e.strerror}") from e
        if getattr(chosen, "kernel_pid", os.getpid()) == os.getpid():
            # the pid records carry; in a PID namespace the fork record has it
            collector.pids.add(child.pid)
        with SignalForwarder(child.pid):
            drain_while(chosen, collector, writer, stats, lambda: child.poll() is None, on_tick)
            if writer.stopped:              # nothing more can be kept: let the script go on
                lost = chosen.lost()
                chosen.close()
                stats.stopped = writer.stopped
                if on_tick:
                    on_tick(stats)
                child.wait()
        folded = 0
        if not writer.stopped:
            collector.take(*chosen.poll())
            collector.take(*chosen.poll())
            collector.flush()
            if hasattr(chosen, "cpu_time"):
                writer.add(decode.decode_cpu_time(chosen.cpu_time(), collector.ranks))
            if collector.summary is not None:
                if hasattr(chosen, "summary"):
                    collector.summary.add(*chosen.summary())
                tables = collector.summary.tables(collector.ranks)
                writer.add(tables)
                folded = _folded(tables)
            lost = chosen.lost()
        stats.lost = sum(lost.values())
        status = _exit_status(child.returncode)
        ranks = sorted(collector.rank_rows.values(), key=lambda r: r["rank"])
        host = writer.meta["host"]
        for r in ranks:
            r["host"] = host
        final = {
            "end_ns": time.monotonic_ns(),
            "exit_status": status,
            "ranks": ranks,
            "world_size": max((r["world_size"] for r in ranks), default=0),
            "pids": sorted(collector.pids),
            "exits": [{"pid": p, "exit_status": st} for p, st in sorted(collector.exits.items())],
            "lost_events": stats.lost,
            "lost_by_cause": lost,
            "events": stats.events,
            "folded_events": folded,
            "failed_ranks": [],
            "framework": frameworks.framework_of(collector.device_kinds.values()),
        }
        final["failed_ranks"] = failed_ranks(ranks, collector.exits, status, nprocs)
        writer.close(**final)
        stats.stopped = writer.stopped
        return RunResult(out, status, chosen.name, fallback, stats, writer.meta)
    finally:
        chosen.close()
        out_dir.release()
        if user is not None and writer is not None:
            give_to(user, out)
