"""Cost of a probe: disabled (vs a do-nothing C call) and traced by msprof.

    sudo .venv/bin/python bench/probe_cost.py [--calls N]

Prints, measured in this one run:
  - ns per call of the runtime's no-op C function (the baseline)
  - ns per disabled probe (semaphore clear) and the ratio (target <= 1.1x)
  - ns per kernel_end traced by msprof's trace program (staged records
    handed over by record_batch, a drain thread emptying the ring every
    10 ms); the same with kernel_end attached on its own (one trap per
    event); and per in-process-recorded event
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

from msprof.runtime import _usdt


def per_call_ns(fn, calls: int, repeats: int = 7, between=None) -> float:
    args = (1, 0, 7, 123, 456)
    samples = []
    for _ in range(repeats):
        t = time.perf_counter_ns()
        for i in range(calls):
            fn(*args)
        samples.append((time.perf_counter_ns() - t) / calls)
        if between:
            between()
    return statistics.median(samples)


def traced_ns(calls: int, probes=None) -> tuple[float, int, int]:
    from msprof.profiler.ebpf import TRACE_PROBES, EbpfBackend

    # traces this very process (the collector's pid)
    backend = EbpfBackend(probes=probes or TRACE_PROBES)
    received = 0
    stop = threading.Event()

    def drain():
        nonlocal received
        while not stop.is_set():
            received += len(backend.poll()[1])
            time.sleep(0.01)

    def catch_up():
        # staged events outrun a drain thread that shares the GIL with the
        # loop: empty the ring between repeats (a 200k-event repeat fits)
        nonlocal received
        _usdt.flush_staged()
        received += len(backend.poll()[1])

    t = threading.Thread(target=drain)
    t.start()
    try:
        assert _usdt.enabled("record_batch" if probes is None else probes[0])
        ns = per_call_ns(_usdt.kernel_end, calls, repeats=5, between=catch_up)
    finally:
        _usdt.flush_staged()
        stop.set()
        t.join()
        received += len(backend.poll()[1])
        lost = sum(backend.lost().values())
        backend.close()
    return ns, received, lost


def inprocess_ns(calls: int) -> float:
    import atexit
    import tempfile

    from msprof.runtime.recorder import Recorder

    with tempfile.TemporaryDirectory() as d:
        rec = Recorder(d)
        atexit.unregister(rec.close)
        return per_call_ns(rec.kernel_end, calls, repeats=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--no-ebpf", action="store_true", help="skip the traced measurement")
    a = ap.parse_args()
    noop = per_call_ns(_usdt.noop, a.calls)
    disabled = per_call_ns(_usdt.kernel_end, a.calls)
    print(f"no-op C call            {noop:8.1f} ns")
    print(f"disabled probe          {disabled:8.1f} ns   ({disabled / noop:.2f}x the no-op call; target <= 1.10x)")
    print(f"in-process recorder     {inprocess_ns(a.calls):8.1f} ns per event")
    if not a.no_ebpf:
        ns, received, lost = traced_ns(a.calls)
        print(f"traced, staged (eBPF)   {ns:8.1f} ns per event   ({received:,} records drained, {lost} lost)")
        ns, received, lost = traced_ns(a.calls, probes=("kernel_end",))
        print(f"traced, one trap each   {ns:8.1f} ns per event   ({received:,} records drained, {lost} lost)")


if __name__ == "__main__":
    main()
