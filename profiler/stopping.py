"""Passing signals on to the profiled script, and making sure it stops.

The script runs in a process group of its own, so a terminal's Ctrl-C
reaches only msprof, which passes it on: the script can save its state and
its profile is kept.  A script that ignores it (or a stuck launcher: a
hydra proxy started with a mangled command line was seen to shrug off
SIGTERM) would keep the session, and the probes it holds enabled, alive
forever, so a second signal stops the script and every process under it
with SIGKILL, as common command-line tools do.
"""
from __future__ import annotations

import os
import signal
import sys
import time

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# How long end_group waits for a group to go after each step: time for a
# collector to pass the signal on and write its profile (the demo's closes
# in well under a second), short enough that a job's end is not held up.
GROUP_GRACE_S = 5.0


def _say(text: str) -> None:
    try:
        sys.stderr.write(f"msprof: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):   # stderr closed: nothing to tell
        pass


class SignalForwarder:
    """While in use, passes FORWARDED_SIGNALS to process group ``pgid``;
    from the second one on, SIGKILLs the group instead."""

    def __init__(self, pgid: int, say=_say):
        self.pgid = pgid
        self.say = say
        self.received = 0
        self._previous: dict = {}

    def __enter__(self) -> "SignalForwarder":
        self._previous = {s: signal.signal(s, self._handle) for s in FORWARDED_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)

    def _handle(self, signum: int, _frame) -> None:
        self.received += 1
        if self.received == 1:
            if signum == signal.SIGINT:
                self.say("Ctrl-C passed on to the script; press Ctrl-C again to stop it")
            _kill_group(self.pgid, signum)
        else:
            self.say("stopping the script (SIGKILL)")
            kill_tree(self.pgid)


def _kill_group(pgid: int, signum: int) -> bool:
    """Signals the group; False once it has no process left."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:   # a process of the group changed its user: no longer ours to end
        return True


def _processes():
    """(pid, state, ppid, process group) of every live process now."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                state, ppid, pgrp = f.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):   # gone meanwhile
            continue
        if state not in "ZX":   # a zombie has ended; its parent may never reap it
            yield int(entry), state, int(ppid), int(pgrp)


def _group_alive(pgid: int) -> bool:
    return any(pgrp == pgid for _, _, _, pgrp in _processes())


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now."""
    children: dict[int, list[int]] = {}
    for child, _, ppid, _ in _processes():
        children.setdefault(ppid, []).append(child)
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILLs the group ``pid`` leads and every process below it: mpiexec's
    proxies and ranks each sit in a process group of their own, and a proxy
    killed first cannot take its ranks down."""
    below = descendants(pid)   # before the kill: orphans would leave the tree
    _kill_group(pid, signal.SIGKILL)
    for p in below:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def end_group(pgid: int, grace: float = GROUP_GRACE_S) -> bool:
    """Ends what is left of process group ``pgid``: SIGTERM, then SIGTERM
    again (a collector in the group stops its own script at the second),
    then SIGKILL.  True when something was left to end."""
    if not _group_alive(pgid):
        return False
    for _ in range(2):
        _kill_group(pgid, signal.SIGTERM)
        if _wait_gone(pgid, grace):
            return True
    kill_tree(pgid)
    _wait_gone(pgid, grace)
    return True


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), None if it is
    gone: with its pid, it names one process even once pids are reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
