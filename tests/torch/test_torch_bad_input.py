"""What stands in the PyTorch adapter's way is one line saying what to
install, and the run still profiles what it can."""
import sys

import pytest

from conftest import REPO, run_msprof
from msprof.frameworks.torch import build

SCRIPT = REPO / "tests" / "torch" / "scripts" / "train.py"


def test_no_compiler_is_one_line(tmp_path, torch_ready, monkeypatch):
    monkeypatch.setenv("MSPROF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    with pytest.raises(build.ShimUnavailable, match="no C\\+\\+ compiler"):
        build.shim_library(sys.executable)


def test_no_torch_is_no_shim(tmp_path):
    python = tmp_path / "venv"
    import venv
    venv.create(python, with_pip=False)
    with pytest.raises(build.ShimUnavailable, match="no torch"):
        build.shim_library(str(python / "bin" / "python"))


def test_a_shim_that_cannot_build_leaves_the_run_going(tmp_path, torch_ready):
    r = run_msprof("run", "-o", tmp_path / "p", SCRIPT, "--steps", 3,
                   env={"MSPROF_CACHE": str(tmp_path / "cache"), "CXX": "/nonexistent/g++"})
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if "PyTorch" in l and "compiler" in l]
    assert len(lines) == 1 and "apt-get install g++" in lines[0]
    assert (tmp_path / "p" / "meta.json").exists()


def test_failure_messages_name_what_to_install():
    assert "pip install ninja" in build._why("RuntimeError: Ninja is required to load C++ extensions")
    assert "systemtap-sdt-dev" in build._why("x.cpp:1: fatal error: sys/sdt.h: No such file or directory")
    assert "g++" in build._why("/bin/sh: 1: c++: not found\\nninja: build stopped")
    assert build._why("a.cpp:3:1: error: expected ';'") == "a.cpp:3:1: error: expected ';'"


def test_attach_to_pytorch_started_without_msprof_says_how_to_profile_it(tmp_path, torch_ready):
    """msprof loads its PyTorch shim only into processes it starts: attach
    to a PyTorch training started without it is one line naming the
    process and the msprof run command that profiles it, not "runs no
    msprof runtime"."""
    import subprocess
    import sys
    import time
    script = tmp_path / "loop.py"
    ready = tmp_path / "ready"
    script.write_text("import sys, time, torch\n"
                      "m = torch.nn.Linear(8, 8)\n"
                      f"open({str(ready)!r}, 'w').close()\n"
                      "time.sleep(60)\n")
    target = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline and target.poll() is None:
            time.sleep(0.1)
        assert ready.exists(), "the PyTorch process did not start"
        r = run_msprof("attach", target.pid, "--duration", 1, "-o", tmp_path / "p")
    finally:
        target.kill()
        target.wait()
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"process {target.pid} (" in r.stderr and "runs PyTorch" in r.stderr
    assert f"msprof run -- {sys.executable} {script}" in r.stderr
    assert not (tmp_path / "p").exists()
