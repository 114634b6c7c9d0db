"""What collecting costs per training step, trace mode against summary mode,
as the kernel and the collector count it (not as step times, which this
kind of VM cannot resolve to a few %):

* BPF: the CPU time of every BPF program msprof loaded (probes and
  tracepoints), from the kernel's own statistics (``kernel.bpf_stats_enabled``,
  ``run_time_ns`` and ``run_cnt`` in the program fds' fdinfo);
* collector: the CPU time of the collecting process (drain, decode, Parquet
  writing), from getrusage;

both over the steps between the collector's first and last progress tick
(compiling and attaching the program, and reading its maps at the end,
are the same whatever the run's length);
* records: what crossed the ring buffer, and what was folded in the kernel.

    sudo .venv/bin/python bench/collection_cost.py [--repeats 3] [--epochs 10]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "lenet_digits.py"
BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"


def bpf_prog_time() -> tuple[int, int]:
    """(run_time_ns, run_cnt) summed over this process's BPF program fds."""
    total = count = 0
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        if "prog_type:" not in text:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        total += int(fields.get("run_time_ns", "0").strip() or 0)
        count += int(fields.get("run_cnt", "0").strip() or 0)
    return total, count


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def one_run(mode: str, epochs: int, workdir: str) -> dict:
    """Per training step, over the window between the collector's first and
    last progress tick (so compiling and attaching the program, and reading
    its maps at the end, are left out): BPF and collector CPU."""
    import msprof
    from msprof.profiler.session import profile_run

    ticks = []
    reading = [0.0]      # CPU this bench spends reading fdinfo: not the collector's

    def tick(_stats):
        before = cpu_seconds()
        ticks.append((time.monotonic_ns(), before - reading[0], *bpf_prog_time()))
        reading[0] += cpu_seconds() - before

    out = os.path.join(workdir, f"{mode}-{len(os.listdir(workdir))}")
    result = profile_run(str(EXAMPLE), ["--epochs", str(epochs)], out, backend="ebpf",
                         mode=mode, on_tick=tick)
    if result.exit_status != 0:
        raise SystemExit(f"the demo failed in {mode} mode (exit status {result.exit_status})")
    (t0, cpu0, bpf0, hits0), (t1, cpu1, bpf1, hits1) = ticks[0], ticks[-1]
    steps = msprof.load(out).steps
    n = int(((steps["start_ns"] >= t0) & (steps["start_ns"] + steps["dur_ns"] <= t1)).sum())
    if n < 10:
        raise SystemExit(f"only {n} steps between the first and last tick: use more --epochs")
    meta, total = result.meta, len(steps)
    return {"bpf_us": (bpf1 - bpf0) / n / 1e3, "hits": (hits1 - hits0) / n,
            "collector_us": (cpu1 - cpu0) / n * 1e6, "records": meta["events"] / total,
            "folded": meta.get("folded_events", 0) / total, "lost": meta["lost_events"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("collection_cost.py needs root (eBPF and kernel.bpf_stats_enabled)")
    previous = Path(BPF_STATS).read_text().strip()
    Path(BPF_STATS).write_text("1")
    modes = ("trace", "summary")
    runs = {m: [] for m in modes}
    try:
        with tempfile.TemporaryDirectory() as work:
            for _ in range(a.repeats):
                for mode in modes:           # interleaved: drift hits both alike
                    runs[mode].append(one_run(mode, a.epochs, work))
    finally:
        Path(BPF_STATS).write_text(previous)
    print(f"LeNet digits, {a.epochs} epochs, eBPF backend, {a.repeats} interleaved repeats "
          "(medians per training step)")
    print(f"  {'mode':8s} {'BPF CPU':>10s} {'BPF runs':>9s} {'collector CPU':>14s} "
          f"{'ring records':>13s} {'folded':>7s}  lost")
    for mode in modes:
        med = {k: statistics.median(r[k] for r in runs[mode]) for k in runs[mode][0]}
        print(f"  {mode:8s} {med['bpf_us']:7.1f} us {med['hits']:9.0f} "
              f"{med['collector_us']:11.0f} us {med['records']:13.0f} {med['folded']:7.0f}  "
              f"{max(r['lost'] for r in runs[mode])}")


if __name__ == "__main__":
    sys.exit(main())
