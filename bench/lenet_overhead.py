"""Step time of the LeNet demo: unprofiled vs msprof (eBPF trace mode, eBPF
summary mode) vs the in-process backend, measured side by side in one run
(interleaved repeats, medians), with the mean kernel duration and probe hits
per step beside it.

    sudo .venv/bin/python bench/lenet_overhead.py [--repeats 5] [--epochs 3]

Target: eBPF trace-mode overhead <= 3 % of the unprofiled step.

Two estimates: the median step of each mode over all repeats, and the
median over repeats of each mode's step over the unprofiled step of the
same repeat (paired: on a VM whose speed flips between two levels from
run to run, a flip hits a few pairs, not every median).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "lenet_digits.py"
MSPROF = Path(sys.executable).parent / "msprof"
STEP = re.compile(r"([\d.]+) ms/step \(median ([\d.]+)\)")


def one_run(mode: str, epochs: int, workdir: str) -> tuple[float, dict | None]:
    """(median step ms as the example measured it, profile meta or None)."""
    args = [str(EXAMPLE), "--epochs", str(epochs)]
    out = os.path.join(workdir, f"{mode}-{len(os.listdir(workdir))}")
    if mode == "unprofiled":
        cmd = [sys.executable, *args]
    else:
        backend, _, collect = mode.partition("-")
        cmd = [str(MSPROF), "run", "-q", "--backend", backend, "--mode", collect or "trace",
               "-o", out, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = STEP.search(r.stdout)
    if not m:
        raise SystemExit(f"no step time in the output of {cmd}:\n{r.stdout}")
    meta = json.loads(Path(out, "meta.json").read_text()) if mode != "unprofiled" else None
    return float(m.group(2)), (meta, out) if meta else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args()
    modes = ["unprofiled", "ebpf", "ebpf-summary", "inprocess"]
    times = {m: [] for m in modes}
    profiles = {}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(a.repeats):
            for mode in modes:  # interleaved: drift hits every mode alike
                ms, prof = one_run(mode, a.epochs, work)
                times[mode].append(ms)
                if prof:
                    profiles[mode] = prof
        import pandas as pd

        meta, path = profiles["ebpf"]
        k = pd.read_parquet(Path(path, "kernels.parquet"))
        steps = pd.read_parquet(Path(path, "steps.parquet"))
        mean_kernel_us = k["dur_ns"].mean() / 1e3
        hits_per_step = meta["events"] / max(len(steps), 1)
        lost = meta["lost_events"]
    base = statistics.median(times["unprofiled"])
    print(f"LeNet digits, {a.epochs} epochs, {a.repeats} interleaved repeats (median of per-run median step)")
    for mode in modes:
        med = statistics.median(times[mode])
        over = (med / base - 1) * 100
        paired = (statistics.median(t / u for t, u in zip(times[mode], times["unprofiled"])) - 1) * 100
        print(f"  {mode:12s} {med:7.3f} ms/step   overhead {over:+6.2f} %   paired {paired:+6.2f} %   "
              f"runs {times[mode]}")
    print(f"  mean kernel duration {mean_kernel_us:.1f} us; ~{hits_per_step:.0f} probe records per step; "
          f"eBPF lost events {lost}")
    print("  target: eBPF trace-mode overhead <= 3 %")


if __name__ == "__main__":
    main()
