"""msprof run inside a PID namespace (a container: unshare --pid --fork
--mount-proc) records the same as outside.  The BPF program knows processes
by the pid the kernel uses, which inside the namespace is not the one the
collector sees (it is pid 1 there); it finds the collector's own with
bpf_get_ns_current_pid_tgid."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import msprof
from conftest import MSPROF, REPO
from test_collect import check_toy_profile

SCRIPTS = Path(__file__).parent / "scripts"
pytestmark = [pytest.mark.ebpf,
              pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare is not installed")]


def _run(*args, namespace: bool, timeout=300):
    cmd = [MSPROF, "run", "-q", "--backend", "ebpf", *map(str, args)]
    if namespace:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _kernels_per_op(path) -> dict:
    prof = msprof.load(path)
    names = prof.ops.set_index("op_id")["name"]
    return prof.kernels["op_id"].map(names).value_counts().sort_index().to_dict()


def test_a_run_in_a_pid_namespace_records_every_event(ebpf_ready, tmp_path):
    out = tmp_path / "p"
    r = _run("-o", out, SCRIPTS / "toy.py", 25, namespace=True)
    assert r.returncode == 0, r.stderr
    meta, _ = check_toy_profile(out, 25, "ebpf")
    # pids are the kernel's: the collector was pid 1 in its namespace
    assert meta["collector_pid"] != 1
    assert meta["ranks"][0]["pid"] in meta["pids"]


def test_ranks_in_a_pid_namespace_are_recorded_as_outside(ebpf_ready, tmp_path):
    got = {}
    for namespace in (False, True):
        out = tmp_path / f"ns{namespace}"
        r = _run("-o", out, "-n", 2, SCRIPTS / "mpi_toy.py", 4, namespace=namespace)
        assert r.returncode == 0, r.stderr
        prof = msprof.load(out)
        assert prof.ranks == [0, 1] and prof.meta["lost_events"] == 0
        got[namespace] = (prof.kernels.groupby("rank").size().to_dict(),
                          prof.comms.groupby("rank").size().to_dict())
    assert got[True] == got[False] == ({0: 4, 1: 4}, {0: 4, 1: 4})


def test_the_demo_in_a_pid_namespace_has_the_kernels_it_has_outside(ebpf_ready, tmp_path):
    counts = {}
    for namespace in (False, True):
        out = tmp_path / f"ns{namespace}"
        r = _run("-o", out, REPO / "examples" / "lenet_digits.py", "--epochs", 1,
                 namespace=namespace)
        assert r.returncode == 0, r.stderr
        meta = json.loads((out / "meta.json").read_text())
        assert meta["lost_events"] == 0 and len(meta["ranks"]) == 1
        counts[namespace] = _kernels_per_op(out)
    assert counts[True] == counts[False]
    assert sum(counts[True].values()) > 1000
