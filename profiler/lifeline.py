"""The script never outlives its collector.

msprof's rule: when the collector dies, however it dies (SIGKILL and the
OOM killer included, which no handler sees), the script it profiles is sent
SIGTERM, as Ctrl-C or ``kill`` of ``msprof run`` would have passed on.  A
training left running unprofiled, with its probes armed and nobody to
report its exit status, is worse than one stopped.

The kernel does it: the child asks for a parent-death signal
(``prctl(PR_SET_PDEATHSIG)``) between fork and exec.  mpiexec (hydra)
handles SIGTERM by killing its proxies and the ranks they started, and a
proxy whose mpiexec disappears (even by SIGKILL) kills its ranks too
(measured with MPICH 4: nothing left running either way).

The setting belongs to the thread that forked the child: the run must be
started from a thread that lives as long as the collector (its main
thread).  It is kept across exec, and set after subprocess has switched
the child to another user (``preexec_fn`` runs after ``setreuid``), since
a change of credentials clears it.
"""
from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
DEATH_SIGNAL = signal.SIGTERM

_prctl = ctypes.CDLL(None, use_errno=True).prctl   # bound now: the forked child must not import


def die_with_parent(sig: int = DEATH_SIGNAL):
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets
    ``sig`` when the process creating it dies."""
    parent = os.getpid()

    def bind() -> None:
        _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:      # the collector died before the request
            os._exit(128 + int(sig))

    return bind
