"""A second Ctrl-C stops a script that ignores the first, in a real terminal
(tmux): the first is passed on and the screen says how to stop the script,
the second SIGKILLs it, and the profile is still written."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import MSPROF

SCRIPTS = Path(__file__).parent / "scripts"


def _until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.ebpf
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_second_ctrl_c_in_a_terminal_stops_a_script_that_ignores_the_first(ebpf_ready, tmp_path):
    out, status, ready = tmp_path / "p", tmp_path / "status", tmp_path / "ready"
    sock = f"msprof-test-{uuid.uuid4().hex[:8]}"
    # the shell's own Ctrl-C does nothing (a trap, reset for msprof), so it
    # stays to write msprof's exit status
    cmd = (f"trap : INT; {MSPROF} run -o {out} --backend ebpf {SCRIPTS / 'ignores_ctrl_c.py'} {ready}; "
           f"echo $? > {status}; sleep 30")
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    subprocess.run(tmux + ["new-session", "-d", "-x", "100", "-y", "30", "sh", "-c", cmd],
                   check=True, env={"PATH": "/usr/bin:/bin", "TERM": "xterm-256color"})

    def screen() -> str:
        return subprocess.run(tmux + ["capture-pane", "-p", "-J", "-t", "0"], check=True,
                              capture_output=True, text=True).stdout

    try:
        assert _until(ready.exists, timeout=120), screen()
        subprocess.run(tmux + ["send-keys", "-t", "0", "C-c"], check=True)
        assert _until(lambda: "press Ctrl-C again" in screen()), screen()
        time.sleep(1.0)   # the first one changed nothing: the script is still running
        assert not status.exists()
        subprocess.run(tmux + ["send-keys", "-t", "0", "C-c"], check=True)
        assert _until(status.exists), screen()
        text = screen()
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
    assert "Ctrl-C passed on to the script; press Ctrl-C again to stop it" in text
    assert "stopping the script (SIGKILL)" in text
    assert "Traceback" not in text
    assert status.read_text().strip() == str(128 + signal.SIGKILL)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["exit_status"] == 128 + signal.SIGKILL
    assert meta["tables"]["steps"] > 0


def test_second_sigint_stops_a_script_that_ignores_the_first(tmp_path):
    out = tmp_path / "p"
    p = subprocess.Popen([MSPROF, "run", "-o", str(out), "--backend", "inprocess",
                          str(SCRIPTS / "ignores_ctrl_c.py")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):   # ignored by the script
            p.wait(timeout=1.5)
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=60) == 128 + signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
    err = p.stderr.read()
    assert "press Ctrl-C again to stop it" in err and "stopping the script (SIGKILL)" in err
    assert json.loads((out / "meta.json").read_text())["exit_status"] == 128 + signal.SIGKILL
