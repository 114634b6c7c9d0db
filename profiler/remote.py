"""hydra's launcher on the way to each machine: ``ssh host msprof collect -- <proxy>``.

mpiexec calls this as ``-launcher-exec`` with ssh-style arguments
(``[options] host command...``).  It runs the same remote shell
(``MSPROF_REMOTE_SHELL``, default ssh) with the proxy's command wrapped in
``msprof collect -o $MSPROF_NODES_OUT/<host>``, so the proxy and the ranks
it starts are profiled by a collector on their own machine.
"""
from __future__ import annotations

import os
import shlex
import sys


def wrap(argv: list[str], out: str, backend: str, msprof: str,
         mode: str = "trace") -> tuple[list[str], str]:
    """(ssh options, host) and the remote command that profiles the proxy."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1
    if i >= len(argv) - 1:
        raise SystemExit(f"msprof remote launcher: expected [options] host command, got {argv}")
    options, host, command = argv[:i], argv[i], " ".join(argv[i + 1:])
    node_out = os.path.join(out, host)
    remote = (f"{shlex.quote(msprof)} collect -q -o {shlex.quote(node_out)} "
              f"--backend {shlex.quote(backend)} --mode {shlex.quote(mode)} "
              f"--label {shlex.quote(host)} -- {command}")
    return [*options, host], remote


def main() -> None:
    out = os.environ["MSPROF_NODES_OUT"]
    backend = os.environ.get("MSPROF_NODES_BACKEND", "auto")
    mode = os.environ.get("MSPROF_NODES_MODE", "trace")
    msprof = os.path.join(os.path.dirname(sys.executable), "msprof")
    shell = shlex.split(os.environ.get("MSPROF_REMOTE_SHELL", "ssh"))
    target, remote = wrap(sys.argv[1:], out, backend, msprof, mode)
    os.execvp(shell[0], [*shell, *target, remote])


if __name__ == "__main__":
    main()
