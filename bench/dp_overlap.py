"""Step time of data-parallel LeNet with bucketed overlap on vs off.

    python bench/dp_overlap.py [--ranks 2,4] [--steps 150] [--bucket-bytes 16384]

Runs examples/lenet_digits.py under mpiexec for each rank count, once with
gradient buckets allreduced during backward and once after it, and prints
the mean and median ms/step each run reports.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "lenet_digits.py"
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")
TIMING = re.compile(r"([\d.]+) ms/step \(median ([\d.]+)\)")


def step_ms(ranks: int, steps: int, bucket: int, overlap: bool) -> tuple[float, float]:
    cmd = [MPIEXEC, "-n", str(ranks), sys.executable, str(EXAMPLE), "--epochs", "1",
           "--steps", str(steps), "--bucket-bytes", str(bucket)]
    if not overlap:
        cmd.append("--no-overlap")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    mean, median = TIMING.search(out).groups()
    return float(mean), float(median)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", default="2,4")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--bucket-bytes", type=int, default=16 << 10)
    args = ap.parse_args(argv)
    print(f"{'ranks':>5}  {'overlap on':>18}  {'overlap off':>18}  (ms/step: mean / median)")
    for n in map(int, args.ranks.split(",")):
        on = step_ms(n, args.steps, args.bucket_bytes, True)
        off = step_ms(n, args.steps, args.bucket_bytes, False)
        print(f"{n:>5}  {on[0]:8.2f} / {on[1]:7.2f}  {off[0]:8.2f} / {off[1]:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
