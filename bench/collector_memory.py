"""The collector's memory stays bounded however many events a run produces.

    sudo .venv/bin/python bench/collector_memory.py [--sizes 250000 1000000 4000000]

Runs `msprof run` on a probe burst of N kernel records for each N and prints
the collector's peak RSS (the burst's own process excluded), events per
second through the collector and lost events.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BURST = REPO / "tests" / "profiler" / "scripts" / "burst.py"


def measure(n: int, work: str) -> tuple[float, float, int, int]:
    out = os.path.join(work, f"p{n}")
    # A fresh interpreter per size so the peak RSS is this run's alone; it
    # reports its own peak (RUSAGE_SELF) after the run.
    code = (
        "import resource, sys, time\n"
        "from msprof.profiler.session import profile_run\n"
        "t = time.perf_counter()\n"
        f"r = profile_run({str(BURST)!r}, [{str(n)!r}], {out!r}, backend='ebpf')\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    secs, rss_kb = p.stdout.split()
    meta = json.loads(Path(out, "meta.json").read_text())
    return float(secs), int(rss_kb) / 1024, meta["events"], meta["lost_events"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000, 4_000_000])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(f"{'records':>10} {'seconds':>8} {'collector peak RSS':>19} {'events':>10} {'lost':>6}")
        for n in a.sizes:
            secs, rss, events, lost = measure(n, work)
            print(f"{n:>10,} {secs:8.2f} {rss:16.0f} MiB {events:>10,} {lost:>6}")


if __name__ == "__main__":
    main()
