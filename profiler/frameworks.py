"""Framework adapters for a launch: which are there, and what the target
needs to load them.

msprof's own runtime needs nothing.  PyTorch needs its shim, built for the
target's torch (frameworks/torch/build.py, cached), loaded by the bootstrap
that leads the target's PYTHONPATH; the BPF program attaches to the shim's
probes by path beside the runtime's.  A target whose Python has no torch
gets no shim, and a shim that cannot be built is one line, not a failed run.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from msprof.frameworks.torch import build as torch_build

BOOTSTRAP = Path(torch_build.__file__).with_name("bootstrap")
SUPPORTED = ("msprof's runtime (msprof.runtime)", "PyTorch (torch)")


# device_init's kind (probes/CATALOG.md) -> the framework that fired it.
DEVICE_KINDS = {0: "msprof", 1: "torch"}


def framework_of(kinds) -> str | None:
    """meta.json's ``framework``: what the ranks' device_init said they
    run (``"msprof"``, ``"torch"``; ``"+"``-joined when mixed; None: no rank)."""
    names = sorted({DEVICE_KINDS.get(int(k), f"kind{int(k)}") for k in kinds})
    return "+".join(names) if names else None


@dataclass
class Frameworks:
    libraries: dict[str, str] = field(default_factory=dict)   # name -> probe library
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)            # one line each, for the user


def target_python(cmd: list[str]) -> str:
    """The Python interpreter the command runs: the first word that is a
    Python, or the interpreter of the first script with a Python shebang
    (torchrun, a console script); msprof's own Python otherwise."""
    for word in cmd:
        path = shutil.which(word) or word
        if not os.path.isfile(path):
            continue
        if os.path.basename(path).startswith("python"):
            return path
        try:
            with open(path, "rb") as f:
                first = f.readline(256)
        except OSError:
            continue
        if first.startswith(b"#!") and b"python" in first:
            parts = first[2:].decode(errors="replace").split()
            if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
                return shutil.which(parts[1]) or parts[1]
            if parts:
                return parts[0]
    return sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(cmd: list[str], backend_name: str, other_user: bool = False) -> Frameworks:
    """The adapters for ``cmd``: libraries to attach and the child's
    environment.  ``other_user``: root runs ``cmd`` as another user, who
    must be able to load the shim (frameworks/torch/build.py SHARED_CACHE)."""
    out = Frameworks()
    if os.environ.get("MSPROF_FRAMEWORKS", "auto") == "none":
        return out
    python = target_python(cmd)
    try:
        shim = torch_build.shim_library(python, shared=other_user)
    except torch_build.ShimUnavailable as e:
        if "no torch" not in str(e):
            out.notes.append(f"PyTorch: {e}; its operators are not recorded")
        return out
    out.libraries["torch"] = shim
    paths = [str(BOOTSTRAP)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    out.env = {
        "PYTHONPATH": os.pathsep.join(paths),
        "MSPROF_TORCH_SHIM": shim,
        "MSPROF_MASTER_PORT": os.environ.get("MASTER_PORT") or str(_free_port()),
    }
    return out
