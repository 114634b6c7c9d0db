"""A job across machines: one collector and one profile directory per machine,
merged by rank when read.  Every "machine" here is this one: a stand-in for
ssh runs hydra's proxy locally, under its own `msprof collect`."""
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

import msprof
from conftest import MSPROF, run_msprof
from msprof.profiler.stopping import kill_tree

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.mark.ebpf
def test_two_collectors_one_directory_each_merged_by_rank(ebpf_ready, tmp_path):
    out = tmp_path / "job"
    r = run_msprof("run", "-n", 2, "--hosts", "nodeA,nodeB", "-o", out, "--backend", "ebpf",
                   SCRIPTS / "mpi_toy.py", 3,
                   env={"MSPROF_REMOTE_SHELL": str(SCRIPTS / "localshell")})
    assert r.returncode == 0, r.stderr
    job = json.loads((out / "job.json").read_text())
    assert job["nodes"] == ["nodeA", "nodeB"] and job["exit_status"] == 0
    metas = {n: json.loads((out / n / "meta.json").read_text()) for n in job["nodes"]}
    # each collector saw exactly the rank its machine ran, and nothing else
    assert [m["ranks"][0]["rank"] for m in metas.values()] == [0, 1]
    assert all(len(m["ranks"]) == 1 and m["backend"] == "ebpf" for m in metas.values())
    assert all(m["lost_events"] == 0 for m in metas.values())
    assert {m["node"] for m in metas.values()} == {"nodeA", "nodeB"}
    prof = msprof.load([out / "nodeA", out / "nodeB"])
    assert sorted(prof.kernels["rank"].unique()) == [0, 1]
    assert len(prof.kernels) == 2 * 3
    comms = prof.comms.sort_values(["seq", "rank"])
    # the same allreduce, matched across ranks by seq, same size on both
    assert comms.groupby("seq")["rank"].apply(list).tolist() == [[0, 1]] * 3
    assert (comms["bytes"] == 4096).all()
    # the job directory itself opens as the same merged profile
    whole = msprof.load(out)
    assert whole.meta["sources"] == [str(out / "nodeA"), str(out / "nodeB")]
    assert whole.ranks == [0, 1] and len(whole.kernels) == 2 * 3
    assert whole.meta["command"] == [str(SCRIPTS / "mpi_toy.py"), "3"]
    assert len(whole.collectives()) == 3
    r = run_msprof("report", out, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["meta"]["sources"] == whole.meta["sources"]
    assert sorted(r["rank"] for r in doc["meta"]["ranks"]) == [0, 1]
    assert sorted(d["rank"] for d in doc["devices"]) == [0, 1]


@pytest.mark.ebpf
def test_a_failing_rank_on_one_machine_fails_the_job(ebpf_ready, tmp_path):
    out = tmp_path / "job"
    r = run_msprof("run", "-n", 2, "--hosts", "nodeA,nodeB", "-o", out, "--backend", "ebpf",
                   SCRIPTS / "mpi_toy.py", 2, 1,
                   env={"MSPROF_REMOTE_SHELL": str(SCRIPTS / "localshell")})
    assert r.returncode != 0
    job = json.loads((out / "job.json").read_text())
    assert job["exit_status"] == r.returncode
    failed = [f for n in job["nodes"]
              for f in json.loads((out / n / "meta.json").read_text())["failed_ranks"]]
    assert [(f["rank"], f["exit_status"]) for f in failed] == [(1, 5)]
    whole = msprof.load(out)
    assert whole.meta["exit_status"] == r.returncode
    assert [(f["rank"], f["exit_status"]) for f in whole.meta["failed_ranks"]] == [(1, 5)]


def test_hostfile_must_exist(tmp_path):
    r = run_msprof("run", "-n", 2, "--hostfile", tmp_path / "hosts", "-o", tmp_path / "j",
                   SCRIPTS / "mpi_toy.py")
    assert r.returncode == 2
    assert r.stderr.strip() == f"msprof: error: hostfile not found: {tmp_path / 'hosts'}"


def _left_running(marker: str) -> list[str]:
    """Command lines of processes that still mention ``marker``."""
    left = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and entry != str(os.getpid()):
            left.append(cmd)
    return left


def _probes_enabled() -> list[str]:
    """The runtime's probes whose semaphore is raised in this very process:
    the kernel raises them in every process mapping the runtime while any
    collector is attached."""
    from msprof.runtime import _usdt
    return [p for p in ("device_init", "step_begin", "record_batch", "comm_begin")
            if _usdt.enabled(p)]


@pytest.mark.ebpf
def test_an_output_path_full_of_shell_syntax_reaches_every_machine_as_one_word(ebpf_ready, tmp_path):
    out = tmp_path / "o x;y" / "j$(touch PWNED)`touch PWNED2`"
    r = run_msprof("run", "-n", 2, "--hosts", "nodeA,nodeB", "-o", out, "--backend", "ebpf",
                   SCRIPTS / "mpi_toy.py", 2, cwd=tmp_path, timeout=180,
                   env={"MSPROF_REMOTE_SHELL": str(SCRIPTS / "localshell")})
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "job.json").read_text())["nodes"] == ["nodeA", "nodeB"]
    assert msprof.load(out).ranks == [0, 1]
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.home().glob("PWNED*"))
    assert _left_running("o x;y") == []
    assert _probes_enabled() == []


@pytest.mark.ebpf
def test_an_unreachable_machine_ends_the_job_and_leaves_nothing_running(ebpf_ready, tmp_path):
    out = tmp_path / "job"
    r = run_msprof("run", "-n", 2, "--hosts", "nodeA,nodeB", "-o", out, "--backend", "ebpf",
                   SCRIPTS / "mpi_toy.py", 2, timeout=180,
                   env={"MSPROF_REMOTE_SHELL": str(SCRIPTS / "unreachable_shell"),
                        "MSPROF_TEST_UNREACHABLE": "nodeB", "MSPROF_TEST_UNREACHABLE_AFTER": "5"})
    assert r.returncode != 0
    assert "Connection timed out" in r.stderr
    job = json.loads((out / "job.json").read_text())
    assert job["exit_status"] == r.returncode and "nodeB" not in job["nodes"]
    assert _left_running(str(out)) == []
    # the other machine's collector has been told to stop: it detaches
    # within moments, not necessarily before msprof run returns
    deadline = time.monotonic() + 10
    while _probes_enabled() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _probes_enabled() == [], _left_running("msprof")


@pytest.mark.ebpf
def test_a_killed_mpiexec_leaves_no_collector_nor_rank_running(ebpf_ready, tmp_path):
    out = tmp_path / "job"
    p = subprocess.Popen([MSPROF, "run", "-n", "2", "--hosts", "nodeA,nodeB", "-o", str(out),
                          "--backend", "ebpf", str(SCRIPTS / "sleeps.py")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "MSPROF_REMOTE_SHELL": str(SCRIPTS / "localshell")})
    try:
        assert p.stdout.readline().strip() == "ready"
        assert p.stdout.readline().strip() == "ready"     # both ranks run, each under its collector
        collectors = [c for c in _left_running(f"collect -q -o {out}/node") if not c.startswith("sh ")]
        assert len(collectors) == 2
        (mpiexec,) = [int(c) for c in open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()]
        os.kill(mpiexec, signal.SIGKILL)
        assert p.wait(timeout=120) == 128 + signal.SIGKILL
    finally:
        if p.poll() is None:
            kill_tree(p.pid)
    assert "launcher(s) the job left running" in p.stderr.read()
    assert _left_running(str(out)) == [] and _left_running(str(SCRIPTS / "sleeps.py")) == []
    assert _probes_enabled() == []


def test_the_remote_command_is_one_quoted_word_per_argument():
    from msprof.profiler.remote import wrap
    out = "/data/o x;y/j$(touch X)`id`'\""
    hydra = ["-x", "nodeA", '"/opt/my env/bin/hydra_pmi_proxy"', "--launcher-exec",
             "/tmp/a b;c/launcher", "--control-port", "vm:4242"]
    target, remote = wrap(hydra, out, "ebpf", "/opt/my env/bin/msprof", "summary")
    assert target == ["-x", "nodeA"]
    # what the remote shell rebuilds from it: the same words, nothing run
    assert shlex.split(remote) == [
        "/opt/my env/bin/msprof", "collect", "-q", "-o", f"{out}/nodeA", "--backend", "ebpf",
        "--mode", "summary", "--label", "nodeA", "--",
        "/opt/my env/bin/hydra_pmi_proxy", "--launcher-exec", "/tmp/a b;c/launcher",
        "--control-port", "vm:4242"]
    echoed = subprocess.run(["sh", "-c", "printf '%s\\n' " + remote.split(" -- ", 1)[0]],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert echoed[4] == f"{out}/nodeA"
