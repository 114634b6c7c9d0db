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
