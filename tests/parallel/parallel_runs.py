"""Helpers for the parallel tests: run a script on N ranks with mpiexec."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")


def mpirun(n: int, script, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
    """``mpiexec -n n python script args`` (one rank: plain python, no MPI)."""
    cmd = [sys.executable, str(script), *map(str, args)]
    if n > 1:
        cmd = [MPIEXEC, "-n", str(n), *cmd]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MSPROF_INPROCESS_DIR", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)


def json_lines(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
