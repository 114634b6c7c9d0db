"""``msprof flame`` in a real terminal (tmux, 80 columns): every line fits,
no line wraps, and the frames are there."""
from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import pytest

from conftest import MSPROF
from profiles import dp_slow, ref_dir  # noqa: F401  (fixtures)

import profiles


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_renders_at_80_columns_in_tmux(tmp_path):
    d = profiles.data_parallel(tmp_path / "dp", slow_rank=2)
    sock = f"msprof-test-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "done"
    cmd = f"{MSPROF} flame {d}; {MSPROF} flame {d} --side-by-side; touch {done}; sleep 30"
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    subprocess.run(tmux + ["new-session", "-d", "-x", "80", "-y", "60", "sh", "-c", cmd],
                   check=True, env={"PATH": "/usr/bin:/bin", "TERM": "xterm-256color"})
    try:
        for _ in range(200):
            if done.exists():
                break
            time.sleep(0.05)
        assert done.exists(), "msprof flame did not finish under tmux"
        screen = subprocess.run(tmux + ["capture-pane", "-p", "-J", "-t", "0"], check=True,
                                capture_output=True, text=True).stdout
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
    lines = [line for line in screen.splitlines() if line.strip()]
    # -J joins wrapped lines: a line longer than the pane would show here
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    text = "\n".join(lines)
    assert "all ranks — device time" in text
    assert "ranks side by side" in text
    assert "MatMul-op1" in text and "Gradients" in text
    assert "Traceback" not in text
