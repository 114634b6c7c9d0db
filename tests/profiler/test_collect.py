"""msprof run end to end on a probe workload with a known answer, with the
real eBPF backend and with the in-process one."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import MSPROF, run_msprof

SCRIPTS = Path(__file__).parent / "scripts"
TABLES = ("kernels", "ops", "memory", "comms", "steps", "devices")


def load_tables(path):
    return {t: pd.read_parquet(Path(path) / f"{t}.parquet") for t in TABLES}


def check_toy_profile(path, steps, backend):
    meta = json.loads((Path(path) / "meta.json").read_text())
    assert meta["backend"] == backend
    assert meta["complete"] is True
    assert meta["lost_events"] == 0
    assert meta["format_version"] == 1
    assert meta["mode"] == "trace"
    assert [r["rank"] for r in meta["ranks"]] == [0]
    t = load_tables(path)
    k = t["kernels"]
    assert len(k) == 2 * steps
    assert k["op_id"].tolist() == [1, 2] * steps
    assert k["seq"].tolist() == list(range(2 * steps))
    assert k["step"].tolist() == [s for s in range(steps) for _ in (0, 1)]
    assert (k["start_ns"] >= k["launch_ns"]).all()
    assert (k["dur_ns"] > 0).all() and (k["dur_ns"] < 10_000_000).all()
    assert (k["rank"] == 0).all()
    ops = t["ops"].sort_values("op_id")
    assert ops["name"].tolist() == ["MatMul-op1", "ReLU-op2"]
    assert ops["scope"].tolist() == ["net/dense/MatMul-op1", "net/relu/ReLU-op2"]
    assert ops["flops"].tolist() == [1000, 10]
    m = t["memory"]
    assert m["size"].tolist() == [256, -256] * steps
    assert m["in_use"].tolist() == [256, 0] * steps
    c = t["comms"]
    assert c["kind"].tolist() == ["allreduce"] * steps
    assert c["bytes"].tolist() == [1024] * steps
    assert c["peer"].tolist() == [-1] * steps
    assert c["seq"].tolist() == list(range(steps))
    s = t["steps"]
    assert s["step"].tolist() == list(range(steps))
    assert s["samples"].tolist() == [8 + i for i in range(steps)]
    assert (s["dur_ns"] > 0).all()
    # every kernel of a step lies inside that step
    merged = k.merge(s, on=["rank", "step"], suffixes=("", "_step"))
    assert (merged["start_ns"] >= merged["start_ns_step"]).all()
    assert (merged["start_ns"] + merged["dur_ns"] <= merged["start_ns_step"] + merged["dur_ns_step"]).all()
    assert t["devices"]["world_size"].tolist() == [1]
    return meta, t


@pytest.mark.ebpf
def test_ebpf_run_records_every_event(ebpf_ready, tmp_path):
    out = tmp_path / "p"
    r = run_msprof("run", "-o", out, "--backend", "ebpf", SCRIPTS / "toy.py", 25)
    assert r.returncode == 0, r.stderr
    meta, _ = check_toy_profile(out, 25, "ebpf")
    assert "usdt:msrt:record_batch" in meta["probes"]
    assert "backend ebpf" in r.stderr


def test_inprocess_run_records_the_same_events(tmp_path):
    out = tmp_path / "p"
    r = run_msprof("run", "-o", out, "--backend", "inprocess", SCRIPTS / "toy.py", 25)
    assert r.returncode == 0, r.stderr
    check_toy_profile(out, 25, "inprocess")
    assert not (out / ".inprocess").exists()


@pytest.mark.ebpf
def test_both_backends_write_identical_tables_but_times(ebpf_ready, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_msprof("run", "-o", a, "--backend", "ebpf", SCRIPTS / "toy.py", 4).returncode == 0
    assert run_msprof("run", "-o", b, "--backend", "inprocess", SCRIPTS / "toy.py", 4).returncode == 0
    ta, tb = load_tables(a), load_tables(b)
    for name in TABLES:
        keep = [c for c in ta[name].columns
                if not c.endswith("_ns") and c not in ("pid", "tid", "dur_ns")]
        assert list(ta[name].columns) == list(tb[name].columns)
        pd.testing.assert_frame_equal(ta[name][keep], tb[name][keep], check_dtype=True)


@pytest.mark.ebpf
def test_first_probe_of_the_script_is_not_missed(ebpf_ready, tmp_path):
    # device_init and op_register fire right at start-up: attach must precede them.
    for _ in range(3):
        out = tmp_path / f"p{_}"
        assert run_msprof("run", "-o", out, "--backend", "ebpf", SCRIPTS / "toy.py", 1).returncode == 0
        t = load_tables(out)
        assert len(t["devices"]) == 1 and len(t["ops"]) == 2


@pytest.mark.ebpf
def test_high_rate_burst_is_lossless(ebpf_ready, tmp_path):
    # 2 M kernels/s, ~30x the demo's rate (one Python thread handing over
    # staged records can reach ~6 M/s; past what the collector drains the
    # ring fills, and what does not fit is counted: see the next test)
    n, rate = 1_000_000, 2_000_000
    out = tmp_path / "p"
    r = run_msprof("run", "-o", out, "--backend", "ebpf", SCRIPTS / "burst.py", n, rate)
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "meta.json").read_text())
    k = pd.read_parquet(out / "kernels.parquet")
    assert len(k) + meta["lost_events"] == n
    assert meta["lost_events"] == 0
    assert k["seq"].tolist() == list(range(n))


@pytest.mark.ebpf
def test_a_full_ring_counts_every_lost_event(ebpf_ready, tmp_path):
    """With a ring too small and nobody draining, what does not fit is counted."""
    from msprof.profiler.ebpf import EbpfBackend

    backend = EbpfBackend(event_ring_bytes=64 * 1024)
    try:
        n = 20_000
        env = {**os.environ}
        r = subprocess.run([str(Path(MSPROF).parent / "python"), str(SCRIPTS / "burst.py"),
                            str(n)], check=True, env=env, capture_output=True, text=True)
        _, events = backend.poll()
        lost = backend.lost()
    finally:
        backend.close()
    kernels = (events["type"] == 1).sum()
    assert lost["event_ring_full"] > 0
    # every kernel record is accounted for; the step and exit records may be
    # lost too, and so may the thread's waits for a CPU (at most one each
    # time it was given a CPU)
    switched_in = int(r.stdout.split()[-1])
    assert n <= kernels + lost["event_ring_full"] <= n + 2 + switched_in


def test_missing_script_is_one_line_and_exit_2(tmp_path):
    r = run_msprof("run", "-o", tmp_path / "p", tmp_path / "nope.py")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"msprof: error: script not found: {tmp_path / 'nope.py'}"]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("backend", ["ebpf", "inprocess"])
def test_script_that_raises_passes_its_status_and_keeps_the_profile(backend, tmp_path, request):
    if backend == "ebpf":
        request.getfixturevalue("ebpf_ready")
    out = tmp_path / "p"
    r = run_msprof("run", "-o", out, "--backend", backend, SCRIPTS / "raises.py")
    assert r.returncode == 1
    assert "RuntimeError: the model diverged" in r.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["exit_status"] == 1 and meta["complete"]
    assert meta["failed_ranks"][0]["rank"] == 0
    if backend == "ebpf":  # the status the process passed to exit_group()
        assert meta["exits"] == [{"pid": meta["ranks"][0]["pid"], "exit_status": 1}]


@pytest.mark.parametrize("backend", ["ebpf", "inprocess"])
def test_script_killed_by_a_signal_exits_128_plus_signal(backend, tmp_path, request):
    if backend == "ebpf":
        request.getfixturevalue("ebpf_ready")
    out = tmp_path / "p"
    r = run_msprof("run", "-o", out, "--backend", backend, SCRIPTS / "killed.py")
    assert r.returncode == 128 + signal.SIGKILL
    meta = json.loads((out / "meta.json").read_text())
    assert meta["exit_status"] == 128 + signal.SIGKILL
    assert len(pd.read_parquet(out / "devices.parquet")) == 1
    if backend == "ebpf":  # the kernel saw the signal end the process
        assert meta["exits"] == [{"pid": meta["ranks"][0]["pid"], "exit_status": 137}]


@pytest.mark.ebpf
def test_records_staged_when_killed_are_not_lost(ebpf_ready, tmp_path):
    """Kernels staged by the runtime and never handed over (two threads, one
    past a full batch) are read at the threads' exit, even after SIGKILL."""
    from msprof.runtime import _usdt

    on_main, on_other = _usdt.STAGE_CAP + 36, 10
    out = tmp_path / "p"
    r = run_msprof("run", "-o", out, "--backend", "ebpf", SCRIPTS / "killed_staged.py",
                   on_main, on_other)
    assert r.returncode == 128 + signal.SIGKILL, r.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["lost_events"] == 0
    k = pd.read_parquet(out / "kernels.parquet")
    assert k[k["op_id"] == 7]["seq"].tolist() == list(range(on_main))
    assert k[k["op_id"] == 8]["seq"].tolist() == list(range(on_other))
    assert k.groupby("op_id")["tid"].nunique().tolist() == [1, 1]
    assert k[k["op_id"] == 7]["tid"].iloc[0] != k[k["op_id"] == 8]["tid"].iloc[0]


@pytest.mark.ebpf
def test_in_summary_mode_records_staged_when_killed_are_folded(ebpf_ready, tmp_path):
    """The same, in summary mode: read at the threads' exit, folded into the
    kernel aggregates, none lost."""
    from msprof.runtime import _usdt

    on_main, on_other = _usdt.STAGE_CAP + 36, 10
    out = tmp_path / "p"
    r = run_msprof("run", "-o", out, "--backend", "ebpf", "--mode", "summary",
                   SCRIPTS / "killed_staged.py", on_main, on_other)
    assert r.returncode == 128 + signal.SIGKILL, r.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["lost_events"] == 0 and meta["mode"] == "summary"
    assert len(pd.read_parquet(out / "kernels.parquet")) == 0
    k = pd.read_parquet(out / "kernel_summary.parquet").set_index("op_id")
    assert k.loc[7, "calls"] == on_main and k.loc[8, "calls"] == on_other
    assert meta["folded_events"] == on_main + on_other


@pytest.mark.ebpf
def test_a_forked_child_does_not_report_its_parents_staged_records(ebpf_ready, tmp_path):
    out = tmp_path / "p"
    r = run_msprof("run", "-o", out, "--backend", "ebpf", SCRIPTS / "forked_staged.py")
    assert r.returncode == 0, r.stderr
    k = pd.read_parquet(out / "kernels.parquet").sort_values(["rank", "seq"])
    assert k.groupby("rank")["op_id"].agg(list).to_dict() == {0: [7] * 5, 1: [9] * 3}


@pytest.mark.ebpf
def test_ctrl_c_reaches_the_script_and_the_profile_is_saved(ebpf_ready, tmp_path):
    out = tmp_path / "p"
    p = subprocess.Popen([MSPROF, "run", "-o", str(out), "--backend", "ebpf",
                          str(SCRIPTS / "sleeps.py")], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 42
    assert p.stdout.read().strip() == "interrupted"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["exit_status"] == 42 and meta["complete"]


def test_existing_profile_is_not_overwritten(tmp_path):
    out = tmp_path / "p"
    assert run_msprof("run", "-o", out, "--backend", "inprocess", SCRIPTS / "toy.py", 1).returncode == 0
    r = run_msprof("run", "-o", out, "--backend", "inprocess", SCRIPTS / "toy.py", 1)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"msprof: error: {out} already holds a profile; choose another -o (or --force to replace it)"]


def _without_bpf_privileges():
    # Root's uid, but without the capabilities that loading BPF needs: what an
    # unprivileged user has, while the files of the test machine stay readable.
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-bpf,-perfmon,-sys_admin", MSPROF]


@pytest.mark.ebpf
def test_without_root_auto_falls_back_and_says_so(ebpf_ready, tmp_path):
    out = tmp_path / "p"
    r = subprocess.run([*_without_bpf_privileges(), "run", "-o", str(out), str(SCRIPTS / "toy.py"), "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "eBPF unavailable (privileges: euid 0 without CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN)); used the in-process backend" in r.stderr.replace("\n", " ")
    check_toy_profile(out, 2, "inprocess")


@pytest.mark.ebpf
def test_without_root_backend_ebpf_refuses(ebpf_ready, tmp_path):
    r = subprocess.run([*_without_bpf_privileges(), "run", "-o", str(tmp_path / "p"), "--backend", "ebpf",
                        str(SCRIPTS / "toy.py")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("msprof: error: eBPF backend unavailable (privileges:")


def test_print_bpf_shows_the_program(tmp_path):
    r = run_msprof("run", "--print-bpf", "x.py")
    assert r.returncode == 0
    assert "BPF_RINGBUF_OUTPUT(events" in r.stdout
    assert "int usdt_record_batch(struct pt_regs *ctx)" in r.stdout


def test_print_bpf_in_summary_mode_shows_the_folding_program(tmp_path):
    r = run_msprof("run", "--print-bpf", "--mode", "summary", "x.py")
    assert r.returncode == 0
    assert "#define SUMMARY_MODE 1" in r.stdout and "kernel_stats, SUMMARY_ENTRIES" in r.stdout


def test_unknown_mode_is_one_line_and_exit_2(tmp_path):
    r = run_msprof("run", "--mode", "sampled", "-o", tmp_path / "p", SCRIPTS / "toy.py")
    assert r.returncode == 2
    assert r.stderr.strip() == ("msprof: error: Invalid value for '--mode': 'sampled' is not one "
                                "of 'trace', 'summary'. (see 'msprof run --help')")
    assert not (tmp_path / "p").exists()


def test_live_progress_in_a_terminal(tmp_path):
    """Under a terminal, run shows events, events/s and lost while it collects."""
    import pty

    out = tmp_path / "p"
    pid, fd = pty.fork()
    if pid == 0:  # the child: msprof on the pty
        os.execv(MSPROF, [MSPROF, "run", "-o", str(out), "--backend", "inprocess",
                          str(SCRIPTS / "sleeps.py")])
    seen = b""
    deadline = time.time() + 60
    while time.time() < deadline and b"lost" not in seen:
        try:
            seen += os.read(fd, 4096)
        except OSError:
            break
    os.kill(pid, signal.SIGINT)
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
    except OSError:
        pass
    _, status = os.waitpid(pid, 0)
    text = seen.decode(errors="replace")
    assert "collecting" in text and "events" in text and "/s" in text and "lost 0" in text
    assert os.waitstatus_to_exitcode(status) == 42


@pytest.mark.parametrize("n,message", [
    (0, "-n must be at least 1 (got 0)"),
    (100000, "-n 100000 is more ranks than one machine can hold here (at most 256); "
             "spread them with --hosts/--hostfile"),
])
def test_bad_rank_count_is_one_line(n, message, tmp_path):
    r = run_msprof("run", "-n", n, "-o", tmp_path / "p", SCRIPTS / "toy.py")
    assert r.returncode == 2
    assert r.stderr.strip() == f"msprof: error: {message}"
    assert not (tmp_path / "p").exists()


@pytest.mark.ebpf
def test_a_small_ring_wrapping_many_times_loses_nothing(ebpf_ready):
    """300k records through a 1 MiB ring (it wraps ~18 times) at ~50k/s, so
    the ring holds a third of a second: the consumer position must never be
    seen half-written (which made the kernel drop a record now and then)."""
    from msprof.profiler.ebpf import EbpfBackend

    backend = EbpfBackend(event_ring_bytes=1 << 20)
    got = 0
    try:
        child = subprocess.Popen([str(Path(MSPROF).parent / "python"),
                                  str(SCRIPTS / "paced.py"), "300000", "50"])
        while child.poll() is None:
            got += (backend.poll()[1]["type"] == 1).sum()
            time.sleep(0.01)
        got += (backend.poll()[1]["type"] == 1).sum()
        lost = backend.lost()
    finally:
        backend.close()
    assert lost["event_ring_full"] == 0
    assert got == 300_000
