"""The script gets SIGTERM when the process that started it dies, however
it dies (profiler/lifeline.py).  No root needed."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STARTER = """
import subprocess, sys
from msprof.profiler.lifeline import die_with_parent
kw = {"preexec_fn": die_with_parent()} if sys.argv[1] == "bound" else {}
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **kw)
print(child.pid, flush=True)
child.wait()
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_and_kill_the_starter(how: str) -> int:
    starter = subprocess.Popen([sys.executable, "-c", STARTER, how], stdout=subprocess.PIPE, text=True)
    child = int(starter.stdout.readline())
    assert alive(child)
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    return child


def test_a_child_bound_to_its_starter_ends_when_the_starter_is_killed():
    assert not alive(start_and_kill_the_starter("bound"))


def test_an_unbound_child_would_outlive_it():
    child = start_and_kill_the_starter("free")
    try:
        assert alive(child)
    finally:
        os.kill(child, signal.SIGKILL)
