"""Causes a training script puts in with its own code (not the runtime's
MSRT_* knobs), found: real profiled runs (eBPF backend), each beside a
control run of the same script without the cause, started at once after
it (this machine's speed drifts between runs a minute apart).  The first
finding about the training must be the injected cause, its impact within
15 % of what the cause costs per iteration, as measured: the median
iteration (one step's start to the next one's) of the run less the
control's for the causes that lie between steps, the median step for
those inside one.  Medians over 30 steps (40 for the ~1 ms steps of the
tiny-ops runs): over 10, two runs' medians of the same job differed by up
to 4 ms of 20 on these two cores shared with other busy processes.

input           a loader that sleeps 20 ms before each batch, or
                preprocesses it with numpy on the host thread (8 rounds:
                ~14 ms), in a one-rank job and, the sleep, on rank 0 alone
                of a two-rank job (rank 0 is named, not the allreduce rank
                1 waits in): within 15 % of the iteration difference, and
                of the wall time the script measured around its loader
                plus the control's time between steps (the loop's own,
                ~0.3 ms, which the what-if counts too: the next batch
                ready when a step ends)
graph per step  the batch grows by one sample per step: a graph compiled
                per step, its input buffers kept (bytes per step from the
                shapes: (batch + i) x (features x 4 + 4))
rebuilt cell    the training cell and optimizer built anew each step
tiny ops        a chain of 400 reshaping copies after the first layer of a
                batch-1 net on one core (its 400 gradients too), beside
                the same net without it: a group of tiny operators whose
                fusion gives back what the chain costs, within 15 % of the
                step difference (the mean over two pairs); what the
                what-if leaves out is the step's end growing with the
                kernels it hands over (+35-45 us) and the loss kernel's
                +20 us after the chain
more work       rank 1 gets three times the batch of rank 0: a slow rank,
                its excess within 15 % of twice rank 0's compute (the
                injection's size) and of the step difference (the mean
                over two pairs)

Measured impact / difference, three runs of this file on the 2-vCPU VM
beside another engineer's CPU benchmarks: loader sleep 1.002-1.007,
numpy preprocessing 0.999-1.016, rank 0's loader in a two-rank job
1.005-1.041; tiny ops 0.929-0.954 (single pairs 0.915-0.956; 0.80-0.85
before the what-if counted every operator of a tiny group); more work
0.954-0.994 (single pairs 0.952-1.009, and 0.867 once, in a run whose
slow rank waited 2.3 ms per step for a CPU).

Clean one- and two-rank runs raise no warning about the training.  CPU
contention is the machine's (this one has two cores and other busy
processes), so it is left out of "about the training", as in
test_injected_causes.py.  The compute-bound runs model their kernels on a
device (MSRT_DEVICE_GFLOPS, see test_injected_causes.py): that is the
device's speed, not a cause.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import msprof
from conftest import run_msprof

SCRIPT = Path(__file__).resolve().parent / "scripts" / "own_causes.py"
QUIET_MPI = {"MPIR_CVAR_ENABLE_HEAVY_YIELD": "1"}
DEVICE = {"MSRT_DEVICE_GFLOPS": "5"}
# two ranks: a slower device and a narrower net, so that compute (13 ms a
# step) outweighs the gradient allreduce (70 KB), which on two cores shared
# with other busy processes took up to 6 ms for 0.5 MB (exposed 24 % of the
# step at width 256)
TWO_RANKS = ("--width", 128, "--batch", 128)
SLOW_DEVICE = {"MSRT_DEVICE_GFLOPS": "2"}
ALARM = ("error", "warning")
MACHINE = {"cpu_contention"}
TOL = 0.15

SLEEP_MS = 20
PREP_ROUNDS = 8          # ~14 ms of numpy per batch here
STEPS = 10               # the memory runs (bytes per step from the shapes)
PAIR_STEPS = 30          # a run compared with its control: medians over more steps
CHAIN_STEPS = 40         # the tiny-ops runs' steps last ~1 ms
MORE_WORK = 3
BATCH, WIDTH = 64, 256


def profiled(factory, name: str, n: int, *args, env=None, steps=PAIR_STEPS):
    out = factory.mktemp(name) / "profile"
    r = run_msprof("run", "-n", n, "-o", out, "--backend", "ebpf", SCRIPT, "--steps", steps,
                   *args, env={**QUIET_MPI, **(env or {})}, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    assert info["ranks"] == n
    prof = msprof.load(out)
    assert prof.meta["backend"] == "ebpf" and prof.meta["lost_events"] == 0
    prof.info = info
    return prof


def about_training(prof) -> list[dict]:
    return [f for f in prof.findings() if f["kind"] not in MACHINE]


def show(prof) -> str:
    return "\n".join(f"{f['severity']} {f['kind']} {f['ranks']} {f['impact_ns']}: {f['message']}"
                     for f in prof.findings())


def iteration(prof, rank: int = 0) -> float:
    """The median time from one step's start to the next one's, on ``rank``."""
    s = prof.steps[prof.steps["rank"] == rank].sort_values("start_ns")
    return float(s["start_ns"].diff().median())


def within(measured: float, expected: float, tol: float = TOL) -> bool:
    return abs(measured - expected) <= tol * abs(expected)


@pytest.fixture(scope="module")
def sleep_pair(tmp_path_factory, ebpf_ready):
    return (profiled(tmp_path_factory, "sleep", 1, "--loader-sleep-ms", SLEEP_MS, env=DEVICE),
            profiled(tmp_path_factory, "sleep_base", 1, env=DEVICE))


@pytest.fixture(scope="module")
def prep_pair(tmp_path_factory, ebpf_ready):
    return (profiled(tmp_path_factory, "prep", 1, "--prep", PREP_ROUNDS, env=DEVICE),
            profiled(tmp_path_factory, "prep_base", 1, env=DEVICE))


@pytest.fixture(scope="module")
def sleep2_pair(tmp_path_factory, ebpf_ready):
    return (profiled(tmp_path_factory, "sleep2", 2, *TWO_RANKS, "--loader-sleep-ms", SLEEP_MS,
                     "--loader-rank", 0, env=SLOW_DEVICE),
            profiled(tmp_path_factory, "sleep2_base", 2, *TWO_RANKS, env=SLOW_DEVICE))


@pytest.fixture(scope="module")
def grow(tmp_path_factory, ebpf_ready):
    return profiled(tmp_path_factory, "grow", 1, "--grow-shape", steps=STEPS)


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory, ebpf_ready):
    return profiled(tmp_path_factory, "rebuilt", 1, "--rebuild", steps=STEPS)


CHAIN = ("--chain", 400, "--chain-op", "reshape", "--batch", 1, "--width", 16)
ONE_CORE = {"MSRT_CPU_BIND": "0"}      # the host and the executor share a core
CHAIN_PAIRS = 2


@pytest.fixture(scope="module")
def chain_pairs(tmp_path_factory, ebpf_ready):
    return [(profiled(tmp_path_factory, "chain", 1, *CHAIN, env=ONE_CORE, steps=CHAIN_STEPS),
             profiled(tmp_path_factory, "chain_base", 1, *CHAIN[4:], env=ONE_CORE,
                      steps=CHAIN_STEPS))
            for _ in range(CHAIN_PAIRS)]


MORE_PAIRS = 2


@pytest.fixture(scope="module")
def more_work_pairs(tmp_path_factory, ebpf_ready):
    return [(profiled(tmp_path_factory, "more", 2, *TWO_RANKS, "--more-work-rank", 1,
                      "--more-work", MORE_WORK, env=SLOW_DEVICE),
             profiled(tmp_path_factory, "more_base", 2, *TWO_RANKS, env=SLOW_DEVICE))
            for _ in range(MORE_PAIRS)]


def _input_bound(pair, rank=0):
    run, base = pair
    fs = about_training(run)
    assert fs and fs[0]["kind"] == "input_bound", show(run)
    top = fs[0]
    assert top["ranks"] == [rank] and top["evidence"]["rank"] == rank, show(run)
    # what the cause costs per iteration: the run's iteration less the control's
    measured = iteration(run, rank) - iteration(base, rank)
    assert within(top["impact_ns"], measured), (top["impact_ns"], measured, show(run))
    # and the loader's own time, as the script timed it, with the loop's own
    # time between steps (the control's)
    loop = float(base.between_steps().query("rank == @rank")["between_steps_ns"].median())
    expected = run.info["loader_ns"] + loop
    assert within(top["impact_ns"], expected), (top["impact_ns"], expected, show(run))
    return top


@pytest.mark.ebpf
def test_a_slow_loader_is_input_bound(sleep_pair):
    top = _input_bound(sleep_pair)
    ev = top["evidence"]
    assert ev["asleep_ns"] >= 0.9 * SLEEP_MS * 1e6, ev      # seen as the host thread asleep
    assert "asleep" in top["message"]
    # and the iterations of the two runs differ by about the sleep
    run, base = sleep_pair
    assert within(iteration(run) - iteration(base), SLEEP_MS * 1e6, 0.3)


@pytest.mark.ebpf
def test_numpy_preprocessing_is_input_bound(prep_pair):
    top = _input_bound(prep_pair)
    ev = top["evidence"]
    # on the host thread: running, or waiting for a CPU to run on
    assert ev["on_cpu_ns"] + ev["cpu_wait_ns"] >= 0.8 * ev["between_steps_ns"], ev


@pytest.mark.ebpf
def test_the_rank_whose_loader_the_others_wait_for_is_named(sleep2_pair):
    top = _input_bound(sleep2_pair, rank=0)
    assert "the other ranks wait" in top["message"], show(sleep2_pair[0])
    kinds = [f["kind"] for f in about_training(sleep2_pair[0]) if f["severity"] in ALARM]
    assert "exposed_comm" not in kinds and "slow_rank" not in kinds, show(sleep2_pair[0])
    assert all(f["kind"] != "dominant_op" or "AllReduce" not in f["ops"][0]
               for f in sleep2_pair[0].findings()), show(sleep2_pair[0])


@pytest.mark.ebpf
def test_a_graph_per_step_is_memory_growth(grow, sleep_pair):
    top = about_training(grow)[0]
    assert top["kind"] == "memory_growth" and top["severity"] == "error", show(grow)
    ev = top["evidence"]
    assert ev["graph_cache"] and not ev["rebuilt"] and "input shapes change" in top["message"]
    # each step's graph keeps its input buffers: x (batch + i, WIDTH) float32, y (batch + i) int32
    expected = sum((BATCH + i) * (WIDTH * 4 + 4) for i in range(1, STEPS)) / (STEPS - 1)
    assert within(ev["bytes_per_step"], expected), (ev["bytes_per_step"], expected)
    # the control run (fixed shapes) holds steady
    assert "memory_growth" not in {f["kind"] for f in sleep_pair[1].findings()}


@pytest.mark.ebpf
def test_a_cell_rebuilt_each_step_is_memory_growth(rebuilt):
    top = about_training(rebuilt)[0]
    assert top["kind"] == "memory_growth", show(rebuilt)
    assert top["evidence"]["rebuilt"] and "built anew" in top["message"], show(rebuilt)
    assert top["evidence"]["bytes_per_step"] > 0


@pytest.mark.ebpf
def test_a_chain_of_tiny_operators_is_host_bound(chain_pairs):
    for run, _ in chain_pairs:
        top = about_training(run)[0]
        assert top["kind"] == "tiny_ops", show(run)
        assert (top["evidence"]["scope"], top["evidence"]["type"]) == ("net/1", "Reshape")
        assert "more in their gradient" in top["message"], show(run)
    impact = sum(about_training(r)[0]["impact_ns"] for r, _ in chain_pairs) / CHAIN_PAIRS
    step = lambda p: float(p.steps["dur_ns"].median())  # noqa: E731
    measured = sum(step(r) - step(b) for r, b in chain_pairs) / CHAIN_PAIRS
    assert within(impact, measured), (impact, measured)


@pytest.mark.ebpf
def test_more_work_on_one_rank_is_a_slow_rank(more_work_pairs):
    """Rank 1's batch is three times rank 0's: on the modelled device its
    compute is three times rank 0's, and the what-if (rank 1 at rank 0's
    speed) saves the difference; the step grows by about as much over the
    control run (its two ranks computing rank 0's batch): the mean over
    two pairs, as a busy spell of the machine's other processes stretches
    one run's steps, not the other's (a rank waiting 2.3 ms per step for a
    CPU in one run, 0.05 in another)."""
    for run, _ in more_work_pairs:
        top = about_training(run)[0]
        assert top["kind"] == "slow_rank" and top["ranks"] == [1], show(run)
        ev = top["evidence"]
        assert within(top["impact_ns"], (MORE_WORK - 1) * ev["others_ns"]), show(run)
        assert "cpu_contention" not in {f["kind"] for f in run.findings()
                                        if 1 in f["ranks"] and f["severity"] in ALARM}, show(run)
    impact = sum(about_training(r)[0]["impact_ns"] for r, _ in more_work_pairs) / MORE_PAIRS
    step = lambda p: float(p.steps["dur_ns"].median())  # noqa: E731
    measured = sum(step(r) - step(b) for r, b in more_work_pairs) / MORE_PAIRS
    assert within(impact, measured), (impact, measured, [show(r) for r, _ in more_work_pairs])


@pytest.mark.ebpf
@pytest.mark.parametrize("pair", ["sleep_pair", "sleep2_pair", "more_work_pairs"])
def test_clean_runs_raise_no_warning(pair, request):
    pairs = request.getfixturevalue(pair)
    base = (pairs[0] if isinstance(pairs, list) else pairs)[1]
    alarms = [f for f in about_training(base) if f["severity"] in ALARM]
    assert alarms == [], show(base)
