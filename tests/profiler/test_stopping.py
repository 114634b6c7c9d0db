"""Ending what a session started: a second forwarded signal SIGKILLs the
script's whole tree, and end_group escalates SIGTERM, SIGTERM, SIGKILL.
Plain processes, no root needed."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from msprof.profiler.stopping import SignalForwarder, descendants, end_group, start_time

# sh that ignores SIGTERM and SIGINT, with a child of its own in another
# process group (as mpiexec's proxies and ranks are)
STUBBORN = "trap '' TERM INT; setsid sleep 300 & echo $!; wait"


def _stubborn():
    p = subprocess.Popen(["sh", "-c", STUBBORN], stdout=subprocess.PIPE, text=True,
                         process_group=0)
    grandchild = int(p.stdout.readline())
    return p, grandchild


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if start_time(pid) is None or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_first_signal_is_passed_on_the_second_kills_the_tree():
    p, grandchild = _stubborn()
    said = []
    try:
        assert grandchild in descendants(p.pid)
        with SignalForwarder(p.pid, say=said.append):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
            assert p.poll() is None          # ignored by the script
            os.kill(os.getpid(), signal.SIGINT)
            assert p.wait(timeout=10) == -signal.SIGKILL
        assert _gone(grandchild)
    finally:
        for pid in (p.pid, grandchild):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()
    assert said == ["Ctrl-C passed on to the script; press Ctrl-C again to stop it",
                    "stopping the script (SIGKILL)"]


def test_end_group_escalates_to_sigkill_and_says_whether_anything_was_left():
    p, grandchild = _stubborn()
    try:
        began = time.monotonic()
        assert end_group(p.pid, grace=0.5) is True
        assert 1.0 <= time.monotonic() - began < 5       # two SIGTERMs waited out
        assert p.wait(timeout=10) == -signal.SIGKILL and _gone(grandchild)
        assert end_group(p.pid, grace=0.5) is False      # nothing left the second time
    finally:
        for pid in (p.pid, grandchild):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_end_group_stops_at_sigterm_when_that_is_enough():
    p = subprocess.Popen(["sleep", "300"], process_group=0)
    began = time.monotonic()
    assert end_group(p.pid, grace=5) is True
    assert p.wait(timeout=10) == -signal.SIGTERM
    assert time.monotonic() - began < 4


def test_start_time_names_one_process():
    assert start_time(os.getpid()) == start_time(os.getpid()) is not None
    p = subprocess.Popen(["true"])
    p.wait()
    assert start_time(p.pid) is None
