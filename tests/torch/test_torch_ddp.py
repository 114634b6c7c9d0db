"""A torch.distributed (gloo) job under `msprof run -n 2`: mpiexec starts
the ranks, the bootstrap gives them torchrun's environment, DDP trains.
Every collective is seen on both ranks, matched by its sequence number,
with DDP's bucket sizes; a rank given more work by the script is found."""
import json

import numpy as np
import pytest

import msprof
from conftest import REPO, run_msprof

SCRIPT = REPO / "tests" / "torch" / "scripts" / "train.py"
STEPS = 30


def _job(tmp, *args):
    tmp.mkdir(parents=True, exist_ok=True)
    out, stats = tmp / "profile", tmp / "stats"
    r = run_msprof("run", "-o", out, "-n", 2, SCRIPT, "--ddp", "--steps", STEPS,
                   "--stats", stats, *args, timeout=600)
    assert r.returncode == 0, r.stderr
    return msprof.load(out), [json.loads(open(f"{stats}.{i}.json").read()) for i in (0, 1)], out


@pytest.fixture(scope="module")
def clean(tmp_path_factory, torch_ready):
    return _job(tmp_path_factory.mktemp("ddp"))


def test_both_ranks_and_every_collective_matched(clean):
    prof, stats, out = clean
    meta = json.loads((out / "meta.json").read_text())
    assert meta["framework"] == "torch"
    assert sorted(r["rank"] for r in meta["ranks"]) == [0, 1]
    assert prof.steps.groupby("rank").size().to_dict() == {0: STEPS, 1: STEPS}
    c = prof.comms
    assert len(c) > 0
    # Numbered where they are issued (gloo runs two of DDP's buckets at once
    # on two worker threads, in either order): each number is one collective,
    # of one kind and one size, on both ranks.
    per_seq = c.groupby("seq").agg(ranks=("rank", "nunique"), kinds=("kind", "nunique"),
                                   sizes=("bytes", "nunique"), n=("rank", "size"))
    assert (per_seq.ranks == 2).all() and (per_seq.kinds == 1).all(), per_seq
    assert (per_seq.sizes == 1).all() and (per_seq.n == 2).all(), per_seq
    sizes = c.groupby(["rank", "step"])["bytes"].apply(lambda b: tuple(sorted(b)))
    assert sizes[0].equals(sizes[1])
    # DDP's gradient allreduces: its buckets, adding up to every gradient's
    # bytes in each step.  Step 0 uses the buckets DDP was built with (what
    # its logging data reports); after it DDP rebuilds them in the order the
    # gradients came (the first capped at 1 MiB), the same in every step.
    ar = c[(c["rank"] == 0) & (c["kind"] == "allreduce")]
    per_step = ar.groupby("step")["bytes"].agg(["sum", lambda b: tuple(sorted(b))])
    per_step.columns = ["sum", "sizes"]
    assert len(per_step) == STEPS
    assert (per_step["sum"] == stats[0]["param_bytes"]).all()
    assert per_step["sizes"].iloc[0] == tuple(sorted(stats[0]["bucket_sizes"]))
    assert per_step["sizes"].iloc[1:].nunique() == 1


def test_comm_report_shows_gloo_collectives(clean):
    _, _, out = clean
    r = run_msprof("report", out, "--section", "comm")
    assert r.returncode == 0, r.stderr
    assert "allreduce" in r.stdout and "broadcast" in r.stdout


# A bigger batch on one rank, beside a control run whose ranks both take the
# small one: wide enough that the difference (~45 ms a step) dwarfs what two
# runs of the same job differ by here (0.4-5 ms at width 512, batch 64).
WIDE = ("--hidden", 1024, "--steps", 20)
BIG_BATCH = 1024
SLOW_RANK_TOL = 0.15


def test_a_rank_with_a_bigger_batch_is_the_slow_rank(tmp_path, torch_ready):
    """Rank 1 trains on batches of 1024 samples, rank 0 on 64 (the script's
    own code): the first finding about the training is rank 1 as the slow
    rank, its what-if within SLOW_RANK_TOL (the issue's 15 %) of what the
    step lost against the control run.

    The what-if is how late rank 1 arrives at rank 0's collectives
    (0.97-1.07 of the step difference here).  Its compute excess on a CPU
    alone read 0.83-0.93: rank 0's operators ran ~2-3 ms a step slower
    beside rank 1's big matrix products than in the control run (two cores
    shared with the collector), and rank 1's waits for a CPU were left
    out."""
    slow, _, out = _job(tmp_path / "slow", *WIDE, "--rank1-batch", BIG_BATCH)
    control, _, _ = _job(tmp_path / "control", *WIDE)
    doc = json.loads(run_msprof("report", out, "--format", "json").stdout)
    first = [f for f in doc["findings"] if f["kind"] != "cpu_contention"][0]
    assert first["kind"] == "slow_rank" and first["ranks"] == [1], doc["findings"]
    step = lambda p: float(p.steps[p.steps["rank"] == 0]["dur_ns"].median())  # noqa: E731
    measured = step(slow) - step(control)
    assert abs(first["impact_ns"] - measured) <= SLOW_RANK_TOL * measured, (first, measured)
    assert not [f for f in control.findings() if f["kind"] == "slow_rank"]


@pytest.mark.parametrize("how", [("run",), ("collect", "--")])
def test_torchrun_launches_and_msprof_follows(tmp_path, torch_ready, how):
    """torchrun is PyTorch's own launcher: msprof follows the process tree
    it makes (`msprof run torchrun ...`, `msprof collect -- torchrun ...`);
    the launcher, which imports torch too, is no rank."""
    out = tmp_path / "profile"
    torchrun = str(REPO / ".venv" / "bin" / "torchrun")
    import shutil
    import sys
    from pathlib import Path
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or torchrun
    r = run_msprof(how[0], "-o", out, *how[1:], torchrun, "--nproc-per-node", 2, SCRIPT, "--ddp",
                   "--steps", 8, timeout=600)
    assert r.returncode == 0, r.stderr
    prof = msprof.load(out)
    meta = json.loads((out / "meta.json").read_text())
    assert sorted(r["rank"] for r in meta["ranks"]) == [0, 1]
    assert prof.steps.groupby("rank").size().to_dict() == {0: 8, 1: 8}
    assert prof.comms.groupby("seq")["rank"].nunique().eq(2).all()


EXIT_RUNS = 5


def test_a_job_that_ends_right_after_its_collectives_exits_cleanly(tmp_path, torch_ready):
    """With any RecordFunction callback registered, gloo keeps the issuing
    thread's state, Python objects included, in each Work, and its worker
    drops the last Works while the script exits, needing the GIL to: one
    that is still held when Python finalizes aborts the process
    ("terminate called without an active exception": 1 run in 4 of a
    variant of this script here).  Without msprof's wait at exit (the
    shim's settle) a rank still held a Work after msprof's exit handlers
    in 4 of 6 runs; with it, none.  Every run exits 0."""
    script = REPO / "tests" / "torch" / "scripts" / "exit_after_collectives.py"
    for i in range(EXIT_RUNS):
        r = run_msprof("run", "-q", "-o", tmp_path / f"p{i}", "-n", 2, script, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "terminate" not in r.stderr, r.stderr
        assert r.stdout.count("held 0") == 2, r.stdout
