"""The injection knobs, each in a fresh one-rank process (they are read once)."""
import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, time
import numpy as np
from msprof.runtime import hooks
allocs, kernels = [], []
hooks.mem_alloc = lambda *a: allocs.append(a)
hooks.kernel_end = lambda op, s, q, launch, begin: kernels.append(hooks.now_ns() - begin)
from tests.runtime.nets import lenet_batch, lenet_train_cell
_, step = lenet_train_cell()
x, y = lenet_batch(8)
step(x, y)
times = []
for _ in range(9):
    t = time.perf_counter()
    step(x, y)
    times.append(time.perf_counter() - t)
n_ops = len(step.executable(x, y))
print(json.dumps({"ms": sorted(times)[4] * 1e3, "n_ops": n_ops,
                  "persistent": sum(1 for a in allocs if a[1] == 4096)}))
"""


def run(**env):
    full = {**os.environ, **env}
    full.pop("MSPROF_INPROCESS_DIR", None)
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       env=full, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1])


def test_knobs_slow_leak_and_tiny_ops():
    base = run()
    slow = run(MSRT_SLOW_RANK="0", MSRT_SLOW_FACTOR="3")
    assert slow["ms"] > 1.8 * base["ms"]
    assert run(MSRT_LEAK_BYTES="4096")["persistent"] == base["persistent"] + 10
    assert run(MSRT_TINY_OPS="20")["n_ops"] == base["n_ops"] + 20
