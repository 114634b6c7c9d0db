"""The injection knobs, each in a fresh one-rank process (they are read once)."""
import json
import os
import subprocess
import sys

from msprof.runtime.device_model import PAYBACK_S

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


SLOW_SCRIPT = r"""
import json, time
from msprof.runtime import knobs
from tests.runtime.nets import lenet_batch, lenet_train_cell
x, y = lenet_batch(8)
_, base = lenet_train_cell()
base(x, y)                                   # compiled without the knob
knobs.SLOW_RANK, knobs.SLOW_FACTOR = 0, 3.0   # what MSRT_SLOW_RANK=0 MSRT_SLOW_FACTOR=3 set
_, slow = lenet_train_cell()
slow(x, y)                                   # compiled with it
ratios = []
for _ in range(9):                           # neighbouring steps: the machine's drift cancels
    t0 = time.perf_counter(); base(x, y); t1 = time.perf_counter(); slow(x, y)
    ratios.append((time.perf_counter() - t1) / (t1 - t0))
print(json.dumps(sorted(ratios)[4]))
"""


def test_knobs_slow_leak_and_tiny_ops():
    base = run()
    p = subprocess.run([sys.executable, "-c", SLOW_SCRIPT], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "MSPROF_INPROCESS_DIR"},
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.splitlines()[-1]) > 1.8     # steps are mostly kernels
    assert run(MSRT_LEAK_BYTES="4096")["persistent"] == base["persistent"] + 10
    assert run(MSRT_TINY_OPS="20")["n_ops"] == base["n_ops"] + 20


BIND_SCRIPT = r"""
import json, os
from msprof.runtime.device import get_device
d = get_device()
d.compute.synchronize()
print(json.dumps({"core": d.core, "threads": sorted(
    sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task"))}))
"""


def test_cpu_bind_pins_every_thread_of_the_rank():
    last = max(os.sched_getaffinity(0))
    env = {**os.environ, "MSRT_CPU_BIND": f"{last},0"}
    p = subprocess.run([sys.executable, "-c", BIND_SCRIPT], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.splitlines()[-1])
    assert out["core"] == last                       # rank 0: the first core listed
    assert len(out["threads"]) >= 2 and all(t == [last] for t in out["threads"])


def test_cpu_bind_to_a_core_out_of_reach_is_a_clear_error():
    env = {**os.environ, "MSRT_CPU_BIND": "4096"}
    p = subprocess.run([sys.executable, "-c", BIND_SCRIPT], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode != 0
    assert "MSRT_CPU_BIND: core 4096 (rank 0) is not one this process may run on" in p.stderr


DEVICE_SCRIPT = r"""
import json
from msprof.runtime import hooks
kernels = []
hooks.kernel_end = lambda op, s, q, launch, begin: kernels.append((op, hooks.now_ns() - begin))
from tests.runtime.nets import lenet_batch, lenet_train_cell
_, step = lenet_train_cell()
x, y = lenet_batch(8)
for _ in range(3):
    step(x, y)
flops = {op.id: op.flops for op in step.executable(x, y).ops}
print(json.dumps([(flops[op], ns) for op, ns in kernels]))
"""


def test_device_model_kernels_last_their_flops_at_the_modelled_speed():
    gflops = 0.2                      # LeNet's biggest kernels: ~1-4 ms at this speed
    env = {**os.environ, "MSRT_DEVICE_GFLOPS": str(gflops)}
    env.pop("MSPROF_INPROCESS_DIR", None)
    p = subprocess.run([sys.executable, "-c", DEVICE_SCRIPT], capture_output=True, text=True,
                       env=env, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert p.returncode == 0, p.stderr
    big = [(f / (gflops * 1e9), ns * 1e-9) for f, ns in json.loads(p.stdout.splitlines()[-1])
           if f / (gflops * 1e9) >= 1e-3]
    assert len(big) >= 12
    # each as long as its FLOPs take on the device, less what it pays back
    # of a late wake-up before it, so the total is exact within a wake-up
    model, took = sum(m for m, _ in big), sum(t for _, t in big)
    assert all(t >= m - PAYBACK_S for m, t in big), big
    assert abs(took / model - 1) < 0.05, (took, model)


def test_device_model_speed_must_be_positive():
    env = {**os.environ, "MSRT_DEVICE_GFLOPS": "0"}
    p = subprocess.run([sys.executable, "-c", "import msprof.runtime.knobs"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode != 0 and "MSRT_DEVICE_GFLOPS='0': expected a speed above 0" in p.stderr
