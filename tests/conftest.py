"""Shared fixtures.

eBPF tests need root, BCC, kernel headers and tracefs.  Where those are
genuinely missing (a laptop) they skip and say why; with MSPROF_REQUIRE_EBPF=1
(set by .ci/run) a missing requirement fails them instead.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
MSPROF = str(VENV_BIN / "msprof")


def pytest_configure(config):
    config.addinivalue_line("markers", "ebpf: needs the real eBPF backend (root, BCC)")


@pytest.fixture(scope="session")
def ebpf_ready():
    from msprof.profiler.availability import unavailable_reason

    reason = unavailable_reason()
    if reason:
        if os.environ.get("MSPROF_REQUIRE_EBPF") == "1":
            pytest.fail(f"eBPF required (MSPROF_REQUIRE_EBPF=1) but unavailable: {reason}")
        pytest.skip(f"eBPF unavailable: {reason}")
    return True


def run_msprof(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    """Run the msprof console script; returns the completed process (text)."""
    env = {**os.environ, "COLUMNS": "100", **kw.pop("env", {})}
    return subprocess.run([MSPROF, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


@pytest.fixture
def msprof():
    return run_msprof


@pytest.fixture(scope="session")
def torch_ready(ebpf_ready):
    """The PyTorch adapter's tests need real torch (the CPU build set-up
    installs): missing, it fails them under MSPROF_REQUIRE_EBPF=1 (CI) and
    skips them with the reason elsewhere."""
    try:
        import torch  # noqa: F401
    except ImportError as e:
        if os.environ.get("MSPROF_REQUIRE_EBPF") == "1":
            pytest.fail(f"torch required for the PyTorch adapter tests: {e}")
        pytest.skip(f"torch not installed: {e}")
    return True
