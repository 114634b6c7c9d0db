"""hydra's launcher on the way to each machine: ``ssh host msprof collect -- <proxy>``.

mpiexec calls this as ``-launcher-exec`` with ssh-style arguments
(``[options] host command...``).  It runs the same remote shell
(``MSPROF_REMOTE_SHELL``, default ssh) with the proxy's command wrapped in
``msprof collect -o $MSPROF_NODES_OUT/<host>``, so the proxy and the ranks
it starts are profiled by a collector on their own machine.

The remote shell joins its arguments with spaces and hands the result to a
shell on the other machine, so every word of that command is quoted here
(``shlex.quote``): a path holding a space, ``;`` or ``$(...)`` reaches the
remote side as one literal word, never as shell syntax.
"""
from __future__ import annotations

import os
import shlex
import sys

from msprof.profiler.stopping import start_time


def _hydra_word(arg: str) -> str:
    """hydra wraps the proxy's path in double quotes for the remote shell;
    undone here, since every word is quoted again with shlex."""
    if len(arg) >= 2 and arg[0] == arg[-1] == '"' and '"' not in arg[1:-1]:
        return arg[1:-1]
    return arg


def wrap(argv: list[str], out: str, backend: str, msprof: str,
         mode: str = "trace") -> tuple[list[str], str]:
    """(ssh options, host) and the remote command that profiles the proxy."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1
    if i >= len(argv) - 1:
        raise SystemExit(f"msprof remote launcher: expected [options] host command, got {argv}")
    options, host, command = argv[:i], argv[i], [_hydra_word(a) for a in argv[i + 1:]]
    node_out = os.path.join(out, host)
    words = [msprof, "collect", "-q", "-o", node_out, "--backend", backend, "--mode", mode,
             "--label", host, "--", *command]
    return [*options, host], shlex.join(words)


def _register() -> None:
    """Leaves this launcher's pid and start time where ``msprof run`` finds
    them: hydra puts each launcher in a process group of its own and may exit
    without ending them (a job that failed, mpiexec killed)."""
    folder = os.environ.get("MSPROF_NODES_LAUNCHED")
    if not folder:
        return
    pid = os.getpid()
    try:
        with open(os.path.join(folder, f"launched-{pid}"), "x") as f:
            f.write(f"{start_time(pid)}\n")
    except OSError:   # not started by msprof run on this machine: nobody to tell
        pass


def main() -> None:
    _register()
    out = os.environ["MSPROF_NODES_OUT"]
    backend = os.environ.get("MSPROF_NODES_BACKEND", "auto")
    mode = os.environ.get("MSPROF_NODES_MODE", "trace")
    msprof = os.path.join(os.path.dirname(sys.executable), "msprof")
    shell = shlex.split(os.environ.get("MSPROF_REMOTE_SHELL", "ssh"))
    target, remote = wrap(sys.argv[1:], out, backend, msprof, mode)
    os.execvp(shell[0], [*shell, *target, remote])


if __name__ == "__main__":
    main()
