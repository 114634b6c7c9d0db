"""The LeNet digits example: reaches its stated accuracy, deterministically."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lenet_digits.py"


def run(*args):
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True,
                          text=True, timeout=300)


def test_lenet_reaches_97_percent():
    p = run()
    assert p.returncode == 0, p.stderr
    epochs = re.findall(r"^epoch\s+\d+\s+loss ([\d.]+)\s+test accuracy ([\d.]+)$",
                        p.stdout, re.M)
    assert len(epochs) == 15
    assert float(epochs[-1][0]) < float(epochs[0][0]) / 5
    final = float(re.search(r"final test accuracy ([\d.]+)", p.stdout).group(1))
    assert final >= 0.97, p.stdout
    assert re.search(r"660 steps of 43 ops: [\d.]+ ms/step", p.stdout)


def test_seeded_runs_are_identical():
    a, b = run("--epochs", "1", "--steps", "20"), run("--epochs", "1", "--steps", "20")
    assert a.returncode == b.returncode == 0
    strip = lambda out: [l for l in out.splitlines() if "ms/step" not in l]  # noqa: E731
    assert strip(a.stdout) == strip(b.stdout)
    assert strip(run("--epochs", "1", "--steps", "20", "--seed", "1").stdout) != strip(a.stdout)
