"""What-ifs that can be checked: for each kind of finding, a real run with
its cause (the injected-cause script of test_injected_causes.py), then the
same run with the fix the finding suggests (the cause taken away), and
``msprof diff`` between them: the gain the diff measures is within 20 % of
the gain the first run's finding promised (``impact_ns``; for a leak, the
bytes it leaves behind).

slow rank     rank 1 at twice the others' compute, then at their speed:
              the typical step falls by what rank 1 computes in excess.
exposed comm  each of the step's two collectives delayed 30 ms, then not:
              the step falls by the exposed time (what the finding's
              what-if, perfect overlap, promises: the transfer off the
              step; overlap itself cannot hide the loss's allreduce, which
              nothing follows).
tiny ops      1000 one-element kernels per step on one rank, then fused
              away (not launched): the step falls by what they held the
              device for.  Both runs on core 0 (the cores differ in speed).
leak          64 KiB never freed per step and rank, then freed: the pool's
              bytes in use at the end fall by what the leak left behind.

The slow-rank runs model their kernels on a device (MSRT_DEVICE_GFLOPS, as
in test_injected_causes.py: this VM's cores drift apart by a third), and
each pair runs back to back, so the machine's drift between the two runs
stays small.  Each run lasts a few seconds.  Measured (gain over the
what-if, one suite on the 2-vCPU VM): slow rank 0.96, exposed
communication 1.02, tiny operators 1.01, leak 1.00 on each rank.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import msprof
from conftest import run_msprof

SCRIPT = Path(__file__).resolve().parent / "scripts" / "injected.py"
QUIET_MPI = {"MPIR_CVAR_ENABLE_HEAVY_YIELD": "1"}     # a waiting rank sleeps (see there)
DEVICE = {"MSRT_DEVICE_GFLOPS": "5"}
WITHIN = 0.20

LEAK_BYTES = 65_536
LEAK_STEPS = 6


def profiled(factory, name: str, n: int, *args, env=None) -> Path:
    out = factory.mktemp(name) / "profile"
    r = run_msprof("run", "-n", n, "-o", out, "--backend", "ebpf", SCRIPT, *args,
                   env={**QUIET_MPI, **(env or {})}, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def pair(factory, name: str, n: int, args: tuple, cause: dict, common=None) -> tuple[Path, Path]:
    """The run with the cause, then at once the same run without it."""
    common = common or {}
    return (profiled(factory, name, n, *args, env={**common, **cause}),
            profiled(factory, name + "_fixed", n, *args, env=common))


def compared(a: Path, b: Path) -> dict:
    """``msprof diff A B --format json``."""
    r = run_msprof("diff", a, b, "--format", "json", "--top", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def finding(profile_dir: Path, kind: str) -> dict:
    found = [f for f in msprof.load(profile_dir).findings() if f["kind"] == kind]
    assert found, f"no {kind} finding in {profile_dir}"
    return found[0]


def step_gain(doc: dict) -> float:
    """What the fix gave back per typical step: A's step less B's (the same
    batch on both sides, so per step and per sample agree)."""
    assert doc["throughput"]["why"] == "", doc["throughput"]
    return doc["step"]["a_ns"] - doc["step"]["b_ns"]


def check(promised: float, measured: float, what: str) -> None:
    assert abs(measured - promised) <= WITHIN * promised, (
        f"{what}: the finding promised {promised:,.0f}, the fix gave {measured:,.0f} "
        f"({measured / promised:.2f}x)")


@pytest.mark.ebpf
def test_slow_rank_fixed_gives_back_its_what_if(tmp_path_factory, ebpf_ready):
    a, b = pair(tmp_path_factory, "slow", 2, ("dp", "--width", 512, "--batch", 128,
                                              "--steps", 12),
                {"MSRT_SLOW_RANK": "1", "MSRT_SLOW_FACTOR": "2"}, DEVICE)
    f = finding(a, "slow_rank")
    assert f["ranks"] == [1]
    doc = compared(a, b)
    check(f["impact_ns"], step_gain(doc), "slow rank")
    assert doc["findings"][0]["kind"] == "improvement"


@pytest.mark.ebpf
def test_exposed_comm_fixed_gives_back_its_what_if(tmp_path_factory, ebpf_ready):
    a, b = pair(tmp_path_factory, "comm", 2, ("dp", "--width", 128, "--batch", 128,
                                              "--steps", 6),
                {"MSRT_COMM_DELAY_US": "30000"})
    f = finding(a, "exposed_comm")
    check(f["impact_ns"], step_gain(compared(a, b)), "exposed communication")


@pytest.mark.ebpf
def test_tiny_ops_fused_give_back_their_what_if(tmp_path_factory, ebpf_ready):
    a, b = pair(tmp_path_factory, "tiny", 1, ("dp", "--width", 64, "--batch", 32,
                                              "--steps", 40),
                {"MSRT_TINY_OPS": "1000"}, {"MSRT_CPU_BIND": "0"})
    f = finding(a, "tiny_ops")
    doc = compared(a, b)
    check(f["impact_ns"], step_gain(doc), "tiny operators")
    # the fused-away operators show as removed, the others as matched
    ops = doc["ops"]
    removed = [o for o in ops if o["change"] == "removed"]
    assert removed and all(o["type"] == "Fill" for o in removed)
    assert not [o for o in ops if o["change"] == "new"]


@pytest.mark.ebpf
def test_leak_freed_gives_back_its_bytes(tmp_path_factory, ebpf_ready):
    a, b = pair(tmp_path_factory, "leak", 2, ("dp", "--width", 64, "--batch", 32,
                                              "--steps", LEAK_STEPS),
                {"MSRT_LEAK_BYTES": str(LEAK_BYTES)})
    f = finding(a, "memory_leak")
    doc = compared(a, b)
    final = {m["rank"]: -m["final_delta"] for m in doc["memory"]}
    for rank, held in f["evidence"]["bytes_by_rank"].items():
        check(held, final[int(rank)], f"leak on rank {rank}")
        assert held == LEAK_BYTES * LEAK_STEPS
