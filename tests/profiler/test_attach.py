"""msprof attach: profile a demo training that is already running, with the
real eBPF backend, and leave it as it was."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import MSPROF, REPO, run_msprof
from msprof.profiler.library import runtime_probe_library
from msprof.profiler.targets import descendants, find_targets, semaphores

EPOCHS = 80          # long enough for two attaches in a row on a slow machine
DEMO = [sys.executable, str(REPO / "examples" / "lenet_digits.py"), "--epochs", str(EPOCHS),
        "--seed", "3"]


def _start_demo() -> subprocess.Popen:
    return subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_training(p: subprocess.Popen) -> str:
    """Blocks until the demo printed its first epoch (its graphs are compiled)."""
    line = p.stdout.readline()
    assert line.startswith("epoch"), (line, p.stderr.read() if p.poll() is not None else "")
    return line


def _results(first: str, p: subprocess.Popen) -> list[str]:
    """The demo's losses and accuracies (not its timings)."""
    out = p.stdout.read()           # with what readline() left in the buffer
    err = p.stderr.read()
    assert p.wait(timeout=600) == 0, err
    return [line for line in (first + out).splitlines() if line.startswith(("epoch", "final"))]


def _attach_until_done(pid: int, watch: list[int], *args) -> tuple[subprocess.Popen, list]:
    """Runs msprof attach PID; samples the semaphores of the processes in
    ``watch`` while it runs."""
    a = subprocess.Popen([MSPROF, "attach", str(pid), "-q", *map(str, args)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lib = runtime_probe_library()
    samples = []
    while a.poll() is None:
        samples.append({w: semaphores(w, lib) for w in watch})
        time.sleep(0.05)
    return a, samples


def _check_profile(out: Path, pid: int) -> dict:
    meta = json.loads((out / "meta.json").read_text())
    assert meta["attached"] is True and meta["attached_pids"] == [pid]
    assert meta["still_running"] == [pid] and meta["exit_status"] is None
    assert meta["lost_events"] == 0, meta["lost_by_cause"]
    assert [r["rank"] for r in meta["ranks"]] == [0]
    kernels = pd.read_parquet(out / "kernels.parquet")
    ops = pd.read_parquet(out / "ops.parquet")
    steps = pd.read_parquet(out / "steps.parquet")
    assert len(steps) >= 5 and len(kernels) >= 43 * len(steps)
    # every kernel's operator was announced again to the late tracer: named
    assert set(kernels["op_id"]) <= set(ops["op_id"]) and ops["op_id"].is_unique
    assert ops["name"].str.contains("Conv2D").any()
    assert (kernels["rank"] == 0).all()
    # steps whole: begun under the probes, each with its kernels
    assert steps["step"].diff().dropna().eq(1).all()
    assert steps["step"].isin(kernels["step"]).all()
    return meta


def test_attach_records_a_running_training_and_leaves_it_as_it_was(ebpf_ready, tmp_path):
    alone = _start_demo()          # the same training, never attached: the reference
    target = _start_demo()
    first_alone, first = _wait_training(alone), _wait_training(target)
    lib = runtime_probe_library()
    assert find_targets([target.pid])[0].library == lib
    assert set(semaphores(target.pid, lib).values()) == {0}

    out = tmp_path / "attached"
    a, samples = _attach_until_done(target.pid, [target.pid, alone.pid],
                                    "--duration", 3, "-o", out)
    assert a.returncode == 0, a.stderr
    assert target.poll() is None, "the training ended before the probes were released"
    # the probes were live in the target only, and are released: every
    # semaphore back to 0 while the training goes on
    assert any(s[target.pid]["record_batch"] == 1 and s[target.pid]["step_begin"] == 1
               for s in samples)
    assert all(set(s[alone.pid].values()) == {0} for s in samples)
    assert set(semaphores(target.pid, lib).values()) == {0}
    meta = _check_profile(out, target.pid)
    assert 2.5e9 < meta["detached_ns"] - meta["start_ns"] < 10e9

    # attached again, detached by Ctrl-C: announced again to the new tracer
    out2 = tmp_path / "again"
    a = subprocess.Popen([MSPROF, "attach", str(target.pid), "-q", "-o", str(out2)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while target.poll() is None and time.monotonic() < deadline:
        try:        # the training may end first on a slow machine: then there is no more to see
            if semaphores(target.pid, lib)["record_batch"]:
                break
        except (ProcessLookupError, FileNotFoundError):
            break
        time.sleep(0.05)
    time.sleep(1.5)
    a.send_signal(signal.SIGINT)
    rc, err = a.wait(timeout=60), a.stderr.read()
    # a slow machine may finish the training before the second attach is in
    # place: then it is refused in one line, as for any process that ended
    assert rc == 0 or (target.poll() is not None and "ended before its probes" in err), err
    if target.poll() is None:
        assert set(semaphores(target.pid, lib).values()) == {0}
        _check_profile(out2, target.pid)

    # the training's results are those of the run nobody attached to
    assert _results(first, target) == _results(first_alone, alone)
    # every analysis takes it: a first step begun before the attach, kernels
    # of steps not in the steps table, pool blocks freed without their allocation
    r = run_msprof("report", out, "--steps")
    assert r.returncode == 0, r.stderr
    assert "attached" in r.stdout and "Conv2D" in r.stdout and "Findings" in r.stdout
    for command in (["flame", out], ["export", out, "--to", "chrome", "-o", tmp_path / "t.json"]):
        r = run_msprof(*command)
        assert r.returncode == 0, r.stderr


def test_attach_refuses_what_it_cannot_profile(tmp_path):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        r = run_msprof("attach", sleeper.pid, "-o", tmp_path / "x")
        assert r.returncode == 2
        assert r.stderr.startswith(f"msprof: error: process {sleeper.pid} (sleep 60) runs no "
                                   "msprof runtime") and r.stderr.count("\n") == 1, r.stderr
    finally:
        sleeper.kill()
    r = run_msprof("attach", 2 ** 30, "-o", tmp_path / "y")
    assert r.returncode == 2 and r.stderr == f"msprof: error: no process {2 ** 30}\n"
    r = run_msprof("attach", 1, "--duration", 0, "-o", tmp_path / "z")
    assert r.returncode == 2 and "--duration must be more than 0" in r.stderr


def test_targets_are_found_below_a_launcher():
    code = "import msprof.runtime.hooks, time; print('up', flush=True); time.sleep(60)"
    shell = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "{code}"; true'],
                             stdout=subprocess.PIPE, text=True)
    assert shell.stdout.readline() == "up\n"
    (child,) = descendants(shell.pid)
    try:
        (target,) = find_targets([shell.pid])          # the shell runs no runtime; its child does
        assert target.pid == child and target.command[1] == "-c"
        assert target.library == runtime_probe_library()
        assert set(semaphores(target.pid, target.library).values()) == {0}
    finally:
        os.kill(child, signal.SIGKILL)
        shell.wait()


def test_attach_to_mpiexec_profiles_every_rank_below_it(ebpf_ready, tmp_path):
    from msprof.profiler.session import mpiexec_path

    job = subprocess.Popen([mpiexec_path(), "-n", "2", *DEMO], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
    first = _wait_training(job)                   # rank 0 prints
    out = tmp_path / "job"
    r = run_msprof("attach", job.pid, "--duration", 2, "-q", "-o", out)
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "meta.json").read_text())
    ranks = {r["rank"]: r["pid"] for r in meta["ranks"]}
    assert sorted(ranks) == [0, 1] and sorted(ranks.values()) == meta["attached_pids"]
    assert job.pid not in meta["attached_pids"]  # mpiexec runs no runtime: its ranks do
    assert meta["lost_events"] == 0, meta["lost_by_cause"]
    comms = pd.read_parquet(out / "comms.parquet")
    steps = pd.read_parquet(out / "steps.parquet")
    assert set(comms["rank"]) == {0, 1} and (comms["kind"] == "allreduce").all()
    assert set(steps["rank"]) == {0, 1}
    lib = runtime_probe_library()
    for pid in ranks.values():
        if job.poll() is None:
            assert set(semaphores(pid, lib).values()) == {0}
    assert len(_results(first, job)) == EPOCHS + 1    # every epoch and the final accuracy


def test_attach_without_bpf_privileges_says_so_in_one_line(tmp_path):
    code = "import msprof.runtime.hooks, time; print('up', flush=True); time.sleep(60)"
    target = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout.readline() == "up\n"
        r = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-bpf,-perfmon,-sys_admin",
                            MSPROF, "attach", str(target.pid), "-o", str(tmp_path / "p")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 3
        assert r.stderr.startswith("msprof: error: msprof attach needs the eBPF backend, "
                                   "unavailable here (privileges:") and r.stderr.count("\n") == 1
        assert not (tmp_path / "p").exists()
    finally:
        target.kill()
        target.wait()


def test_attach_joins_a_run_already_profiled(ebpf_ready, tmp_path):
    """msprof attach on a training under msprof run: both get the operators
    (announced again for the newcomer, kept once by each), and the run's
    probes stay when the attach lets go of its own."""
    from msprof.profiler.ebpf import TRACE_PROBES

    run = subprocess.Popen([MSPROF, "run", "-q", "-o", str(tmp_path / "run"), "--backend",
                            "ebpf", *DEMO[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    first = _wait_training(run)
    (target,) = find_targets([run.pid])
    r = run_msprof("attach", run.pid, "--duration", 2, "-q", "-o", tmp_path / "att")
    assert r.returncode == 0, r.stderr
    if run.poll() is None:
        held = semaphores(target.pid, target.library)
        assert held == {p: int(p in TRACE_PROBES) for p in held}      # msprof run's, still 1
    _check_profile(tmp_path / "att", target.pid)
    assert len(_results(first, run)) == EPOCHS + 1
    for name in ("ops", "devices"):
        t = pd.read_parquet(tmp_path / "run" / f"{name}.parquet")
        assert not t.duplicated(["rank", "op_id"] if name == "ops" else ["rank"]).any(), name
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["lost_events"] == 0


def test_attach_ends_with_the_process_even_unreaped(ebpf_ready, tmp_path):
    """Without --duration, msprof attach lets go when the process ends (here
    a zombie: its parent, this test, has not waited for it yet)."""
    code = ("import time; from msprof.runtime import hooks; hooks.device_init(0, 1, 0); "
            "print('up', flush=True); t = time.monotonic()\n"
            "for s in range(10**9):\n"
            "    hooks.step_begin(s); time.sleep(0.002); hooks.step_end(s, 0)\n"
            "    if time.monotonic() - t > 6: break")
    target = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert target.stdout.readline() == "up\n"
    r = run_msprof("attach", target.pid, "-q", "-o", tmp_path / "p", timeout=60)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert meta["still_running"] == [] and meta["exit_status"] == 0
    assert meta["ranks"][0]["rank"] == 0                       # device announced again
    assert len(pd.read_parquet(tmp_path / "p" / "steps.parquet")) > 10
    assert target.wait() == 0
