"""Profiling a job whose ranks run on several machines.

One collector per machine, one profile directory per machine, merged by
rank when the profile is read.  ``msprof run --hosts a,b`` (or
``--hostfile``) starts the job with mpiexec (MPICH's hydra) and makes hydra
reach every machine through ``msprof.profiler.remote`` instead of plain ssh:
it runs hydra's proxy on each machine *under* ``msprof collect``, so the
ranks that proxy starts are in that collector's process tree.  Each
collector writes ``OUT/<host>/`` on its own machine; copy them into one
folder (or keep a shared file system) and ``msprof report OUT`` reads them
all.  msprof must be installed at the same path on every machine, as MPI
already requires of the Python that runs the script.
"""
from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import tempfile
import time

from msprof.errors import MsprofError
from msprof.profiler.lifeline import die_with_parent
from msprof.profiler.outdir import OutputDir
from msprof.profiler.session import mpiexec_path, script_command
from msprof.profiler.stopping import SignalForwarder, end_group, start_time

JOB_FILE = "job.json"


def _launcher(folder: str) -> str:
    """An executable hydra can call as its launcher (it takes one path, and
    passes it on to every proxy unquoted: it lives in a folder of msprof's
    own, never under the user's -o)."""
    path = os.path.join(folder, "launcher")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m msprof.profiler.remote \"$@\"\n")
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return path


def _end_launched(folder: str) -> int:
    """Ends every launcher (and the collector under it, which stops its
    proxy) still running once mpiexec is gone; how many there were.  On
    this machine that is the remote shell: ssh's end tells the other side."""
    left = 0
    for name in os.listdir(folder):
        if not name.startswith("launched-"):
            continue
        pid = int(name.split("-", 1)[1])
        with open(os.path.join(folder, name)) as f:
            started = f.read().strip()
        if str(start_time(pid)) == started and end_group(pid):
            left += 1
    return left


def run_on_hosts(script: str, args: list[str], out: str, *, nprocs: int,
                 hosts: str | None, hostfile: str | None, backend: str,
                 mode: str = "trace", force: bool = False) -> tuple[int, list[str]]:
    """Run the job across machines; returns (exit status, node profile dirs)."""
    if nprocs < 1:
        raise MsprofError(f"-n must be at least 1 (got {nprocs})")
    if not (hosts or hostfile):
        raise MsprofError("a multi-machine run needs --hosts or --hostfile")
    if hostfile and not os.path.isfile(hostfile):
        raise MsprofError(f"hostfile not found: {hostfile}")
    cmd = script_command(script, args)
    out = os.path.abspath(out)
    out_dir = OutputDir(out, force=force)       # held (locked) until the job ends
    try:
        return _run_job(out_dir, cmd, script, args, nprocs, hosts, hostfile, backend, mode)
    finally:
        out_dir.release()


def _run_job(out_dir: OutputDir, cmd, script, args, nprocs, hosts, hostfile, backend, mode):
    out = out_dir.path
    where = ["-f", hostfile] if hostfile else ["-hosts", hosts]
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="msprof-launch-") as folder:
        env = {**os.environ, "MSPROF_NODES_OUT": out, "MSPROF_NODES_BACKEND": backend,
               "MSPROF_NODES_MODE": mode, "MSPROF_NODES_LAUNCHED": folder}
        mpi = [mpiexec_path(), *where, "-launcher", "ssh", "-launcher-exec", _launcher(folder),
               "-n", str(nprocs), *cmd]
        child = subprocess.Popen(mpi, env=env, process_group=0,
                                 preexec_fn=die_with_parent())
        try:
            with SignalForwarder(child.pid):
                rc = child.wait()
        finally:
            left = _end_launched(folder)
            if left:
                print(f"msprof: ended {left} launcher(s) the job left running", file=sys.stderr)
    status = 128 - rc if rc < 0 else rc
    nodes = sorted(d for d in os.listdir(out)
                   if os.path.isfile(os.path.join(out, d, "meta.json")))
    with os.fdopen(out_dir.create(JOB_FILE), "w") as f:
        json.dump({"command": [script, *args], "argv": mpi, "hosts": hosts, "hostfile": hostfile,
                   "nprocs": nprocs, "nodes": nodes, "exit_status": status,
                   "started": started, "ended": time.time()}, f, indent=2)
    return status, [os.path.join(out, n) for n in nodes]
