"""Parallel runs profiled with eBPF: every rank, every collective, matched.

``msprof run -n N`` of a few data-parallel LeNet steps: each collective
appears once per rank with the same seq and bytes on every rank, the bytes
are the buckets' tensor sizes, comm kernels run on stream 1 one for one with
the comms; bucketed overlap shows comm overlapping compute kernels in time,
and turning it off removes the overlap.  A rank crash leaves a saved profile
that names the rank.
"""
import json
from pathlib import Path

import numpy as np
import pytest

import msprof
from conftest import run_msprof
from parallel_runs import SCRIPTS

SCRIPT = SCRIPTS / "train_modes.py"
STEPS = 6
# Big enough that backward computes for milliseconds after the first
# gradient bucket is ready: the window in which its allreduce overlaps.
GLOBAL_BATCH = 128
# LeNet's parameters (conv1, conv2, fc1, fc2, fc3 with biases) plus the loss.
LENET_GRAD_BYTES = 4 * (150 + 2400 + 48120 + 10164 + 850)
STEP_COMM_BYTES = LENET_GRAD_BYTES + 4


def profile(tmp_path: Path, n: int, *args, env=None):
    out = tmp_path / f"n{n}"
    r = run_msprof("run", "-n", n, "-o", out, "--backend", "ebpf", SCRIPT, "dp",
                   "--steps", STEPS, "--global-batch", GLOBAL_BATCH, *args, env=env or {}, timeout=180)
    return r, out


@pytest.fixture(scope="module", params=[2, 4])
def dp_profile(request, tmp_path_factory, ebpf_ready):
    n = request.param
    r, out = profile(tmp_path_factory.mktemp("dp"), n)
    assert r.returncode == 0, r.stderr[-3000:]
    return n, msprof.load(out)


@pytest.mark.ebpf
def test_every_rank_is_in_the_profile(dp_profile):
    n, prof = dp_profile
    assert sorted(r["rank"] for r in prof.meta["ranks"]) == list(range(n))
    assert prof.meta["lost_events"] == 0 and prof.meta["failed_ranks"] == []
    assert sorted(prof.comms["rank"].unique()) == list(range(n))


@pytest.mark.ebpf
def test_each_collective_once_per_rank_matched_by_seq(dp_profile):
    n, prof = dp_profile
    c = prof.comms
    assert (c["kind"] == "allreduce").all() and (c["peer"] == -1).all()
    per_seq = c.groupby("seq").agg(ranks=("rank", "nunique"), rows=("rank", "size"),
                                   sizes=("bytes", "nunique"))
    assert (per_seq["ranks"] == n).all() and (per_seq["rows"] == n).all()
    assert (per_seq["sizes"] == 1).all()                     # same bytes on every rank
    seqs = sorted(c[c["rank"] == 0]["seq"])
    assert seqs == list(range(len(seqs))) and len(seqs) % STEPS == 0


@pytest.mark.ebpf
def test_comm_bytes_are_the_tensor_sizes(dp_profile):
    n, prof = dp_profile
    c = prof.comms[prof.comms["step"] >= 0]
    per_step = c.groupby(["rank", "step"])["bytes"].sum()
    assert (per_step == STEP_COMM_BYTES).all(), per_step.unique()
    assert 4 in set(c["bytes"])                                # the loss


@pytest.mark.ebpf
def test_comm_kernels_run_on_stream_one_with_the_comms(dp_profile):
    n, prof = dp_profile
    k = prof.kernels
    for rank in range(n):
        comm_kernels = k[(k["rank"] == rank) & (k["stream"] == 1)]
        assert len(comm_kernels) == (prof.comms["rank"] == rank).sum()
    names = prof.ops.set_index("op_id")["type"]
    assert set(names[k[k["stream"] == 1]["op_id"].unique()]) == {"AllReduce"}


def overlap_ns(prof) -> int:
    """Per rank, time during which a comm kernel and a compute kernel both ran."""
    total = 0
    k = prof.kernels[prof.kernels["step"] >= 1]
    for _, kr in k.groupby("rank"):
        comp = kr[kr["stream"] == 0][["start_ns", "dur_ns"]].to_numpy()
        comm = kr[kr["stream"] == 1][["start_ns", "dur_ns"]].to_numpy()
        cs, ce = comp[:, 0], comp[:, 0] + comp[:, 1]
        for s, d in comm:
            total += int(np.clip(np.minimum(ce, s + d) - np.maximum(cs, s), 0, None).sum())
    return total


@pytest.mark.ebpf
def test_bucketed_overlap_on_overlaps_and_off_does_not(dp_profile, tmp_path, ebpf_ready):
    n, prof = dp_profile
    assert overlap_ns(prof) > 0
    r, out = profile(tmp_path, n, "--no-overlap")
    assert r.returncode == 0, r.stderr[-3000:]
    assert overlap_ns(msprof.load(out)) == 0


@pytest.mark.ebpf
def test_a_rank_crash_saves_a_profile_naming_the_rank(tmp_path, ebpf_ready):
    r, out = profile(tmp_path, 2, env={"MSRT_CRASH_RANK": "1", "MSRT_CRASH_STEP": "3"})
    assert r.returncode != 0
    meta = json.loads((out / "meta.json").read_text())
    failed = {f["rank"]: f["exit_status"] for f in meta["failed_ranks"]}
    # rank 1 died with the knob's status; mpiexec then ends rank 0 with a
    # signal, which may be recorded too
    assert failed[1] == 13, failed
    assert set(failed) <= {0, 1} and failed.get(0, 1) != 0
    prof = msprof.load(out)
    assert sorted(prof.comms["rank"].unique()) == [0, 1]
