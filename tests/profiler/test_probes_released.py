"""However a session ends, no process using the runtime is left with its
probes enabled (a raised semaphore makes every probe parse its arguments:
66 -> 150 ns a call).  The collector attaches by library path with pid -1
and lets the kernel manage the semaphores; the kernel lowers them when the
uprobes' perf fds close, which a SIGKILLed collector's exit does too
(measured: off within 0.5 s in a bystander, the orphaned script and a
forked child).  What kept them on after a bad end was a collector that
never ended: a --hosts job hung by an unquoted -o left `msprof collect`
running (test_nodes.py checks nothing is left there).  Semaphores are read
from the processes' memory (/proc/PID/mem)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MSPROF
from msprof.probes.usdt import read_probes
from msprof.profiler.ebpf import TRACE_PROBES
from msprof.profiler.library import runtime_probe_library
from msprof.profiler.stopping import kill_tree

SCRIPTS = Path(__file__).parent / "scripts"
LIBRARY = runtime_probe_library()


def raised_semaphores(pid: int) -> list[str]:
    """The attached probes whose semaphore is non-zero in process ``pid``."""
    probes = read_probes(LIBRARY)
    maps = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.realpath(parts[5]) == LIBRARY:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                maps.append((start, end, int(parts[2], 16)))
    assert maps, f"process {pid} does not map {LIBRARY}"
    raised = []
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for name in TRACE_PROBES:
            off = probes[name].semaphore_offset
            for start, end, file_off in maps:
                if file_off <= off < file_off + (end - start):
                    mem.seek(start + off - file_off)
                    if int.from_bytes(mem.read(2), "little"):
                        raised.append(name)
    return raised


def _until(predicate, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def bystander():
    """A process using the runtime, started before the session, not profiled."""
    p = subprocess.Popen([sys.executable, "-c",
                          "from msprof.runtime import _usdt; import time; print('up', flush=True); "
                          "time.sleep(300)"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "up"
    yield p.pid
    p.kill()
    p.wait()


def _new_process_raised() -> list[str]:
    """The probes enabled in a runtime process started now."""
    code = (f"from msprof.runtime import _usdt; "
            f"print(' '.join(p for p in {TRACE_PROBES!r} if _usdt.enabled(p)))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.mark.ebpf
@pytest.mark.parametrize("how", ["ends", "sigkill"])
def test_no_probe_stays_enabled_after_a_session(ebpf_ready, bystander, tmp_path, how):
    ready = tmp_path / "ready"
    p = subprocess.Popen([MSPROF, "run", "-q", "-o", str(tmp_path / "p"), "--backend", "ebpf",
                          str(SCRIPTS / "ignores_ctrl_c.py"), str(ready)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    target = None
    try:
        assert _until(ready.exists, timeout=120)
        (target,) = [int(c) for c in open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()]
        # while the session runs, every process mapping the runtime has them on
        assert raised_semaphores(bystander) == list(TRACE_PROBES)
        assert raised_semaphores(target) == list(TRACE_PROBES)
        if how == "ends":
            p.send_signal(signal.SIGTERM)   # the script ignores it
            time.sleep(1.0)                 # two pending signals would merge into one
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=60) == 128 + signal.SIGKILL
        else:
            p.kill()
            p.wait(timeout=60)
        assert _until(lambda: raised_semaphores(bystander) == [])
        if how == "sigkill" and os.path.exists(f"/proc/{target}"):
            # the script, left without its collector, has them off too
            assert raised_semaphores(target) == []
        assert _new_process_raised() == []
    finally:
        kill_tree(p.pid)
        if target is not None:
            kill_tree(target)
