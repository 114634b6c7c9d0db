"""Passing signals on to the profiled script, and making sure it stops.

The script runs in a process group of its own, so a terminal's Ctrl-C
reaches only msprof, which passes it on: the script can save its state and
its profile is kept.  A script that ignores it (or a launcher such as
hydra's proxy, which ignores SIGTERM) would keep the session, and the
probes it holds enabled, alive forever, so a second signal stops the whole
group with SIGKILL, as common command-line tools do.
"""
from __future__ import annotations

import os
import signal
import sys
import time

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# How long end_group waits for a group to go after each step: a training
# script passed SIGTERM saves and exits within a second here; hydra's proxy
# takes a few hundred ms to take its ranks down.
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
            _kill_group(self.pgid, signal.SIGKILL)


def _kill_group(pgid: int, signum: int) -> bool:
    """Signals the group; False once it has no process left."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:   # a process of the group changed its user: no longer ours to end
        return True


def _wait_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _kill_group(pgid, 0):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def end_group(pgid: int, grace: float = GROUP_GRACE_S) -> bool:
    """Ends what is left of process group ``pgid``: SIGTERM, then SIGTERM
    again (a collector in the group stops its own script at the second),
    then SIGKILL.  True when something was left to end."""
    if not _kill_group(pgid, 0):
        return False
    for signum in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
        _kill_group(pgid, signum)
        if _wait_gone(pgid, grace):
            break
    return True
