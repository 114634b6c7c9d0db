"""pip install msprof into a fresh virtualenv, used outside the checkout:
``msprof doctor --fix`` links the system's BCC into it, and the demo is
profiled with the real eBPF backend."""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pandas as pd
import pytest

from conftest import REPO


def _run(cmd, cwd, env, timeout=600):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, wheel): the project built as a wheel and installed, with its
    dependencies, into a new virtualenv (pip's configured indexes)."""
    tmp = tmp_path_factory.mktemp("pip")
    r = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
              "-w", tmp / "dist", REPO], tmp, os.environ)
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp / "dist").glob("msprof-*.whl")
    venv = tmp / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    assert _run([base, "-m", "venv", venv], tmp, os.environ).returncode == 0
    r = _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], tmp, os.environ)
    assert r.returncode == 0, r.stderr
    return venv, wheel


def _env(venv):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return {**env, "PATH": f"{venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "COLUMNS": "200"}


def test_the_wheel_ships_the_license_and_classifiers(installed):
    _, wheel = installed
    z = zipfile.ZipFile(wheel)
    meta = z.read("msprof-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in meta
    assert "Classifier: Operating System :: POSIX :: Linux" in meta
    assert "MIT License" in z.read("msprof-0.1.0.dist-info/licenses/LICENSE").decode()


def test_doctor_fix_then_an_ebpf_profile_outside_the_checkout(installed, ebpf_ready, tmp_path):
    venv, _ = installed
    env = _env(venv)
    msprof = venv / "bin" / "msprof"
    r = _run([venv / "bin" / "python", "-c", "import msprof.cli; print(msprof.cli.__file__)"],
             tmp_path, env)
    assert r.stdout.startswith(str(venv)), r.stdout + r.stderr     # not the checkout's

    r = _run([msprof, "doctor"], tmp_path, env)
    assert r.returncode == 1, r.stdout
    assert "cannot import bcc" in r.stdout and "msprof doctor --fix" in r.stdout
    assert "setup.sh" not in r.stdout
    r = _run([msprof, "doctor", "--fix"], tmp_path, env)
    assert r.returncode == 0, r.stdout
    assert "fixed bcc: linked /usr/lib/python3/dist-packages/bcc" in r.stdout
    assert "eBPF backend: ready" in r.stdout
    assert _run([msprof, "doctor"], tmp_path, env).returncode == 0      # it stays fixed

    shutil.copy(REPO / "examples" / "lenet_digits.py", tmp_path)
    r = _run([msprof, "run", "-q", "-o", "prof", "--backend", "ebpf", "lenet_digits.py",
              "--epochs", "1"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert "final test accuracy" in r.stdout
    meta = json.loads((tmp_path / "prof" / "meta.json").read_text())
    assert meta["backend"] == "ebpf" and meta["lost_events"] == 0
    assert meta["probes"][0] == "usdt:msrt:device_init"
    kernels = pd.read_parquet(tmp_path / "prof" / "kernels.parquet")
    ops = pd.read_parquet(tmp_path / "prof" / "ops.parquet")
    assert len(kernels) > 1000 and set(kernels["op_id"]) <= set(ops["op_id"])
    r = _run([venv / "bin" / "python", "-m", "msprof", "report", "prof", "-s", "ops"],
             tmp_path, env)
    assert r.returncode == 0 and "Conv2D" in r.stdout, r.stderr
