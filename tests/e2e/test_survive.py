"""A profile survives its collector, and msprof's output is safe to write as
root: the LeNet demo profiled with the real eBPF backend while the
collector is killed, the disk fills, a directory is planted or shared."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import MSPROF, REPO, run_msprof

LENET = REPO / "examples" / "lenet_digits.py"
SCRIPTS = REPO / "tests" / "profiler" / "scripts"
STOP_LINE = ("msprof: cannot write the profile to {out} {when}: the disk is full")


def wait_meta(out: Path, ready, timeout: float = 90) -> dict:
    """meta.json once ``ready(meta)`` holds (the collector rewrites it every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            meta = json.loads((out / "meta.json").read_text())
        except (OSError, ValueError):
            meta = None
        if meta and ready(meta):
            return meta
        time.sleep(0.2)
    raise AssertionError(f"{out}/meta.json never got ready")


def steps_written(n: int):
    return lambda m: (m.get("tables") or {}).get("steps", 0) >= n and m.get("ranks")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def fill(disk: Path) -> None:
    """Writes until the file system holding ``disk`` is full."""
    with open(disk / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
        except OSError as e:
            assert e.errno == 28
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


@pytest.fixture
def tmpfs(tmp_path):
    """A small file system of its own (tmpfs, root only), unmounted after."""
    if os.geteuid() != 0 and os.environ.get("MSPROF_REQUIRE_EBPF") != "1":
        pytest.skip("mounting a tmpfs needs root")
    mounted = []

    def make(size: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def report_json(out: Path, *sections: str) -> dict:
    r = run_msprof("report", out, "--format", "json", *(a for s in sections for a in ("--section", s)))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


@pytest.mark.ebpf
@pytest.mark.parametrize("nprocs", [1, 2])
def test_sigkill_of_the_collector_leaves_a_partial_profile_and_stops_the_training(
        ebpf_ready, tmp_path, nprocs):
    # with -n 2 the ranks are mpiexec's grandchildren (mpiexec -> hydra proxy -> rank)
    out = tmp_path / "p"
    p = subprocess.Popen([MSPROF, "run", "-q", "-n", str(nprocs), "-o", str(out), "--backend", "ebpf",
                          str(LENET), "--epochs", "400"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    meta = wait_meta(out, lambda m: steps_written(40 * nprocs)(m) and len(m["ranks"]) == nprocs)
    training = [pid for pid in meta["pids"] if pid != p.pid]
    assert len(training) >= (1 if nprocs == 1 else 2 + nprocs)    # mpiexec, proxy, ranks
    assert all(alive(pid) for pid in training)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in training) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in training), "the training outlived its collector"

    doc = report_json(out)
    assert doc["meta"]["complete"] is False and doc["meta"]["exit_status"] is None
    assert doc["partial"].startswith("partial: its collector ended before closing it; "
                                     "holds data up to ")
    for rank in range(nprocs):
        steps = [s["step"] for s in doc["steps"] if s["rank"] == rank]
        assert len(steps) >= 40 and steps[:40] == list(range(40))
    assert doc["ops"] and doc["ops"][0]["calls"] >= 40
    shown = run_msprof("report", out, "--section", "steps")
    assert shown.returncode == 0, shown.stderr
    assert "complete     no, partial: its collector ended before closing it" in shown.stdout
    assert "exit status  unknown (the profile was not closed)" in shown.stdout


@pytest.mark.ebpf
def test_sigkill_of_an_attached_collector_leaves_a_partial_profile(ebpf_ready, tmp_path):
    """msprof attach collects as msprof run does: meta.json checkpointed while
    it runs, so a SIGKILLed attach leaves a profile that names its rank and
    says up to when it holds data; the training it left goes on."""
    import sys
    out = tmp_path / "p"
    training = subprocess.Popen([sys.executable, str(LENET), "--epochs", "400"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert training.stdout.readline().startswith("epoch")     # its graphs compiled
        a = subprocess.Popen([MSPROF, "attach", str(training.pid), "-q", "-o", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        meta = wait_meta(out, lambda m: steps_written(20)(m) and len(m["ranks"]) == 1)
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=10)
        assert meta["attached"] is True
        time.sleep(0.5)
        assert training.poll() is None          # attach never holds the training's life
        doc = report_json(out)
        assert doc["meta"]["complete"] is False
        assert doc["partial"].startswith("partial: its collector ended before closing it; "
                                         "holds data up to ")
        assert [r["rank"] for r in doc["meta"]["ranks"]] == [0]
        assert len(doc["steps"]) >= 20 and doc["ops"]
    finally:
        training.kill()
        training.wait()


@pytest.mark.parametrize("backend", ["ebpf", "inprocess"])
def test_a_disk_that_fills_mid_run_stops_collecting_and_keeps_what_was_written(backend, tmpfs, request):
    if backend == "ebpf":
        request.getfixturevalue("ebpf_ready")
    disk = tmpfs("64m")
    out = disk / "p"
    p = subprocess.Popen([MSPROF, "run", "-q", "-o", str(out), "--backend", backend, str(LENET),
                          "--epochs", "12"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_meta(out, steps_written(20))
    fill(disk)
    stdout, stderr = p.communicate(timeout=240)
    assert p.returncode == 0, stderr          # the training ran on to its end
    assert "final test accuracy" in stdout
    lines = stderr.strip().splitlines()
    assert lines[0] == (STOP_LINE.format(out=out, when="while collecting")
                        + "; stopped collecting (the script goes on; the profile keeps what was written)")
    assert lines[-1] == f"partial profile kept in {out}  (msprof report {out})"
    assert "Traceback" not in stderr

    doc = report_json(out)
    assert doc["meta"]["complete"] is False
    assert doc["meta"]["stopped"] == STOP_LINE.format(out=out, when="while collecting")[len("msprof: "):]
    assert doc["partial"].startswith(f"partial: {doc['meta']['stopped']}; holds data up to ")
    assert len(doc["steps"]) >= 20


@pytest.mark.ebpf
def test_a_disk_full_at_close_is_one_line_and_keeps_the_chunks(ebpf_ready, tmpfs):
    disk = tmpfs("32m")
    out = disk / "p"
    r = run_msprof("run", "-q", "-o", out, "--backend", "ebpf", SCRIPTS / "fills_disk.py",
                   50_000, disk / "filler", 48 * 1024)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    line = STOP_LINE.format(out=out, when="while closing it")
    assert r.stderr.strip().splitlines()[0] == (
        line + " (the profile keeps its tables as chunks: msprof report reads them)")
    assert (out / "kernels.arrows").exists()

    doc = report_json(out, "ops")              # on the full disk: reading needs no room
    assert doc["meta"]["complete"] is False
    assert doc["meta"]["stopped"] == line[len("msprof: "):]
    assert doc["ops"][0]["calls"] == 50_000


@pytest.mark.ebpf
def test_a_planted_directory_with_a_symlink_is_refused_and_not_written_through(ebpf_ready, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("root's file")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "kernels.parquet").symlink_to(victim)
    r = run_msprof("run", "-o", planted, "--backend", "ebpf", SCRIPTS / "toy.py", 2)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"msprof: error: {planted} already exists and is not a profile; msprof writes only "
        "into a new directory (choose another -o)"]
    # made to look like a profile: --force replaces it, the link is removed, not followed
    (planted / "meta.json").write_text("{}")
    r = run_msprof("run", "-q", "-o", planted, "--force", "--backend", "ebpf", SCRIPTS / "toy.py", 2)
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "root's file"
    assert not (planted / "kernels.parquet").is_symlink()
    assert json.loads((planted / "meta.json").read_text())["complete"] is True


@pytest.mark.ebpf
def test_a_users_own_folder_is_refused(ebpf_ready, tmp_path):
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "kernels.parquet").write_bytes(b"a user's own table")
    for force in ([], ["--force"]):
        r = run_msprof("run", "-o", mine, *force, "--backend", "ebpf", SCRIPTS / "toy.py", 2)
        assert r.returncode == 2
        assert len(r.stderr.strip().splitlines()) == 1
        assert "already exists and is not a profile" in r.stderr
    assert (mine / "kernels.parquet").read_bytes() == b"a user's own table"
    assert sorted(os.listdir(mine)) == ["kernels.parquet"]


@pytest.mark.ebpf
def test_the_same_output_twice_at_once_refuses_the_second(ebpf_ready, tmp_path):
    out = tmp_path / "p"
    first = subprocess.Popen([MSPROF, "run", "-q", "-o", str(out), "--backend", "ebpf",
                              str(SCRIPTS / "sleeps.py")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "ready"
    for force, message in (([], f"msprof: error: {out} already holds a profile; choose another -o "
                                "(or --force to replace it)"),
                           (["--force"], f"msprof: error: {out} is being written by another "
                                         "msprof run; choose another -o")):
        r = run_msprof("run", "-o", out, *force, "--backend", "ebpf", SCRIPTS / "toy.py", 2)
        assert r.returncode == 2
        assert r.stderr.strip().splitlines() == [message]
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=60) == 42
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] is True and meta["command"][0].endswith("sleeps.py")
