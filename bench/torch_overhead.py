"""Step time of a PyTorch MLP (784-512-512-10, batch 64, one thread):
unprofiled, under msprof (eBPF trace, eBPF summary), with msprof's shim
loaded but nobody tracing, and under torch.profiler (CPU activities,
default options); interleaved repeats in one run, medians and paired
ratios (each mode over the unprofiled run of the same repeat).

    sudo .venv/bin/python bench/torch_overhead.py [--repeats 7] [--steps 300]

Target: msprof's trace-mode overhead at most one fifth of torch.profiler's
on the same model in the same run.  PyTorch without msprof loads nothing
of msprof: the shim is loaded only into processes msprof launches.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "bench" / "torch_mlp_step.py"
MSPROF = Path(sys.executable).parent / "msprof"
STEP = re.compile(r"([\d.]+) ms/step \(median ([\d.]+)\)")
MODES = ["unprofiled", "msprof-trace", "msprof-summary", "shim-untraced", "torch.profiler"]


def one_run(mode: str, steps: int, work: str, shim: str) -> tuple[float, dict | None]:
    args = [str(MODEL), "--steps", str(steps)]
    env = dict(os.environ)
    out = os.path.join(work, f"{mode}-{len(os.listdir(work))}")
    if mode.startswith("msprof-"):
        cmd = [str(MSPROF), "run", "-q", "--backend", "ebpf", "--mode", mode.split("-")[1],
               "-o", out, *args]
    else:
        cmd = [sys.executable, *args]
        if mode == "torch.profiler":
            cmd.append("--torch-profiler")
        if mode == "shim-untraced":   # loaded and its callbacks registered, no tracer
            env.update(PYTHONPATH=str(REPO / "frameworks" / "torch" / "bootstrap"),
                       MSPROF_TORCH_SHIM=shim)
    r = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    m = STEP.search(r.stdout)
    if not m:
        raise SystemExit(f"no step time in the output of {cmd}:\n{r.stdout}\n{r.stderr}")
    meta = json.loads(Path(out, "meta.json").read_text()) if mode.startswith("msprof-") else None
    return float(m.group(2)), meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=300)
    a = ap.parse_args()
    shim = subprocess.run([sys.executable, str(REPO / "frameworks" / "torch" / "build.py")],
                          capture_output=True, text=True, check=True).stdout.strip()
    times = {m: [] for m in MODES}
    metas = {}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(a.repeats):
            for mode in MODES:   # interleaved: drift hits every mode alike
                ms, meta = one_run(mode, a.steps, work, shim)
                times[mode].append(ms)
                if meta:
                    metas[mode] = meta
    base = statistics.median(times["unprofiled"])
    over = {}
    print(f"PyTorch MLP 784-512-512-10, batch 64, 1 thread, {a.steps} steps, "
          f"{a.repeats} interleaved repeats (median of per-run median step)")
    for mode in MODES:
        med = statistics.median(times[mode])
        paired = statistics.median(t / u for t, u in zip(times[mode], times["unprofiled"])) - 1
        over[mode] = paired
        print(f"  {mode:15s} {med:7.3f} ms/step   overhead {(med / base - 1) * 100:+6.2f} %   "
              f"paired {paired * 100:+6.2f} %")
    meta = metas["msprof-trace"]
    print(f"  msprof trace: {meta['events']:,} records, {meta['lost_events']} lost")
    ratio = over["msprof-trace"] / over["torch.profiler"] if over["torch.profiler"] > 0 else float("nan")
    print(f"  msprof trace overhead / torch.profiler overhead (paired): {ratio:.2f} "
          f"(target <= 0.20)")


if __name__ == "__main__":
    main()
