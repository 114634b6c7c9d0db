"""The eBPF backend: loads probes/trace.c, attaches it, drains its rings.

Attach happens before the profiled script starts: the USDT probes are
attached by library path (kernel-managed semaphores), and the BPF program
filters on a map of traced processes that starts with the collector's own
pid and follows every fork, so the script's very first probe is seen.
"""
from __future__ import annotations

import os
import threading
from importlib import resources

import numpy as np

from msprof.errors import MsprofError
from msprof.probes import events
from msprof.probes.usdt import entry_point, read_probes
from msprof.profiler.attach import attach_usdt
from msprof.profiler.library import runtime_probe_library
from msprof.profiler.ringbuf import RingReader

# Probes the trace program attaches.  Kernels and pool events arrive staged:
# while record_batch is attached the runtime writes them as finished records
# in a per-thread area and hands them over in batches (one trap per batch,
# not per event), so kernel_launch/begin/end and mem_* are not attached.
# They are attached in this order, which matters to a process already
# running (msprof attach; runtime/_usdt.c): its announcements first, then
# the staged records, then the steps and collectives, each begin before its
# end, so that the first step seen whole has its kernels too.
TRACE_PROBES = ("device_init", "op_register", "record_batch", "step_begin", "step_end",
                "comm_begin", "comm_end")
TRACEPOINTS = ("task:task_newtask", "sched:sched_process_exit",
               "syscalls:sys_enter_exit_group", "signal:signal_generate",
               "sched:sched_wakeup", "sched:sched_switch")
LOST_CAUSES = ("event_ring_full", "meta_ring_full", "unpaired_end", "pair_map_full",
               "staged_unreadable", "cpu_time_map_full", "summary_map_full")
MODES = ("trace", "summary")

CPU_TIME = np.dtype([("pid", np.int32), ("tid", np.int32), ("cpu", np.int32),
                     ("ns", np.int64)])

EVENT_RING_BYTES = 16 << 20
META_RING_BYTES = 1 << 20
MAX_TRACED = 4096


def framework_probes(frameworks: dict[str, str], probes=TRACE_PROBES) -> dict[str, dict]:
    """For each framework adapter's library (name -> path): the probes of
    ``probes`` it fires (an adapter fires a subset of the runtime's: the
    shim stages steps and collectives instead of firing them)."""
    out = {}
    for name, library in frameworks.items():
        found = read_probes(library)
        out[name] = {p: found[p] for p in probes if p in found}
        if "record_batch" not in out[name]:
            raise MsprofError(f"{library} lacks the USDT probe record_batch")
    return out


def program_text(library: str, probes=TRACE_PROBES, event_ring_bytes=EVENT_RING_BYTES,
                 mode: str = "trace", frameworks: dict[str, str] | None = None) -> str:
    """The complete BPF C program msprof loads (``msprof run --print-bpf``)."""
    if mode not in MODES:
        raise MsprofError(f"unknown mode {mode!r} (choose trace or summary)")
    found = read_probes(library)
    missing = [p for p in probes if p not in found]
    if missing:
        raise MsprofError(f"{library} lacks USDT probes: {', '.join(missing)}")
    page = os.sysconf("SC_PAGE_SIZE")
    parts = [
        f"#define EVENT_RING_PAGES {event_ring_bytes // page}",
        f"#define META_RING_PAGES {META_RING_BYTES // page}",
        f"#define MAX_TRACED {MAX_TRACED}",
        *(["#define SUMMARY_MODE 1"] if mode == "summary" else []),
        events.c_header(),
        resources.files("msprof.probes").joinpath("trace.c").read_text(),
    ]
    parts += [entry_point(found[p], f"handle_{p}") for p in probes]
    # A framework's probes have their own argument locations: one entry
    # function each, into the same handlers.
    for name, sites in framework_probes(frameworks or {}, probes).items():
        parts += [entry_point(site, f"handle_{p}", f"usdt_{name}_{p}") for p, site in sites.items()]
    return "\n".join(parts)


class EbpfBackend:
    name = "ebpf"

    def __init__(self, probes=TRACE_PROBES, event_ring_bytes=EVENT_RING_BYTES, mode: str = "trace",
                 frameworks: dict[str, str] | None = None,
                 library: str | None = None, pids: list[int] | None = None):
        """``frameworks``: adapters' probe libraries (name -> path) to attach
        beside the runtime's.  ``pids``: trace these running processes
        (``msprof attach``; their probes attached for them alone, in
        ``library``, the runtime module they map); by default the
        collector's own future children, through the probes of every process
        that maps this msprof's runtime."""
        try:
            from bcc import BPF
        except ImportError as e:
            raise MsprofError("BCC's Python package (python3-bpfcc) is not importable; "
                              "run 'msprof doctor'") from e
        self.library = library or runtime_probe_library()
        self.probes = list(probes)
        self._probe_sites = read_probes(self.library)
        self.mode = mode
        self.frameworks = dict(frameworks or {})
        text = program_text(self.library, probes, event_ring_bytes, mode, self.frameworks)
        try:
            self.bpf = BPF(text=text.encode())
        except Exception as e:  # bcc raises plain Exceptions on load failure
            raise MsprofError(f"cannot load the BPF program: {e}") from e
        self._links = []
        # The traced processes are known before a probe fires: a running
        # process announces itself again as soon as its probes are live.
        traced = self.bpf[b"traced"]
        for pid in pids or []:      # msprof run's collector claims itself below
            traced[traced.Key(pid)] = traced.Leaf(1)
        try:
            for p in probes:
                fd = self.bpf.load_func(f"usdt_{p}".encode(), BPF.KPROBE).fd
                for pid in pids or [-1]:
                    self._links.append((p, attach_usdt(fd, self.library, self._probe_sites[p], pid)))
            framework_sites = framework_probes(self.frameworks, probes)
            for name, sites in framework_sites.items():
                for p, site in sites.items():
                    fd = self.bpf.load_func(f"usdt_{name}_{p}".encode(), BPF.KPROBE).fd
                    self._links.append((p, attach_usdt(fd, self.frameworks[name], site)))
        except BaseException:
            self.close()
            raise
        self.attached = ([f"usdt:msrt:{p}" for p in probes]
                         + [f"usdt:msrt:{p}@{name}" for name, sites in framework_sites.items()
                            for p in sites]
                         + [f"tracepoint:{t}" for t in TRACEPOINTS])
        if pids:
            self.kernel_pid = os.getpid()
        else:
            try:
                self.kernel_pid = self._claim_collector()
            except BaseException:
                self.close()
                raise
        self._events = RingReader(self.bpf[b"events"].map_fd, event_ring_bytes, events.EVENT)
        self._meta = RingReader(self.bpf[b"meta"].map_fd, META_RING_BYTES, events.META)

    def _claim_collector(self) -> int:
        """Puts this process in the traced map under the pid the kernel knows
        it by, which inside a PID namespace (a container) is not os.getpid():
        the program recognises it by its namespace and its pid there at its
        next clone (a thread started here).  Returns that pid."""
        ns = os.stat("/proc/self/ns/pid")
        table = self.bpf[b"collector"]
        key = table.Key(0)
        entry = table[key]
        # the kernel compares the nsfs device in its own encoding (MKDEV: major << 20)
        entry.dev = os.major(ns.st_dev) << 20 | os.minor(ns.st_dev)
        entry.ino = ns.st_ino
        entry.ns_pid = os.getpid()
        entry.global_pid = 0
        table[key] = entry
        thread = threading.Thread(target=lambda: None, name="msprof-claim")
        thread.start()
        thread.join()
        pid = table[key].global_pid
        if not pid:
            raise MsprofError("cannot find this process's pid as the kernel sees it "
                              f"(PID namespace {ns.st_ino}), so its script could not be traced; "
                              "run msprof outside the container, or use --backend inprocess")
        return pid

    def child_env(self) -> dict[str, str]:
        return {}

    def poll(self) -> tuple[np.ndarray, np.ndarray]:
        """(meta records, event records) submitted since the last poll."""
        return self._meta.read(), self._events.read()

    def lost(self) -> dict[str, int]:
        table = self.bpf[b"lost"]
        return {cause: int(table[table.Key(i)].value) for i, cause in enumerate(LOST_CAUSES)}

    def cpu_time(self) -> np.ndarray:
        """Time each runtime thread spent on each CPU so far: records of
        ``pid``, ``tid``, ``cpu`` and ``ns`` (the trace program's on_cpu map)."""
        items = self.bpf[b"on_cpu"].items()
        out = np.zeros(len(items), dtype=CPU_TIME)
        for i, (k, v) in enumerate(items):   # one per thread and CPU: a few dozen
            out[i] = (v.pid, k.tid, k.cpu, v.ns)
        return out

    def summary(self) -> tuple[np.ndarray, np.ndarray]:
        """Summary mode: the kernel and pool aggregates folded so far
        (events.KERNEL_STATS and events.MEMORY_STATS rows); empty in trace mode."""
        if self.mode != "summary":
            return np.zeros(0, events.KERNEL_STATS), np.zeros(0, events.MEMORY_STATS)
        items = self.bpf[b"kernel_stats"].items()
        kernels = np.zeros(len(items), events.KERNEL_STATS)
        for i, (k, v) in enumerate(items):     # one per operator and process
            kernels[i] = (k.pid, k.stream, k.op_id, v.calls, v.total_ns, v.min_ns, v.max_ns,
                          tuple(v.hist))
        items = self.bpf[b"memory_stats"].items()
        memory = np.zeros(len(items), events.MEMORY_STATS)
        for i, (k, v) in enumerate(items):
            memory[i] = (k.pid, 0, k.op_id, v.allocs, v.alloc_bytes, v.frees, v.freed_bytes,
                         v.peak_in_use)
        return kernels, memory

    def detach(self, probes=None) -> None:
        """Releases the probes (all, or those named): each process's
        semaphores drop back; what they recorded can still be polled until
        ``close``.  Ends go before their begins (the reverse of attaching):
        a step or collective begun while its end is still traced is seen
        whole."""
        for p, link in reversed(self._links):
            if probes is None or p in probes:
                link.close()
        self._links = [(p, link) for p, link in self._links if link.fd >= 0]

    def close(self) -> None:
        self.detach()
        for reader in ("_events", "_meta"):
            r = getattr(self, reader, None)
            if r is not None:
                r.close()
                setattr(self, reader, None)
        if getattr(self, "bpf", None) is not None:
            self.bpf.cleanup()
            self.bpf = None
