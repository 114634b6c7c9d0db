"""Builds the PyTorch shim against the torch that is installed, once.

The shim is a C++ extension (torch's own cpp_extension API) compiled for
one torch version, C++ ABI and Python; the result is kept in a cache keyed
by those and by the source, so a rebuild happens only when one of them
changes (~35 s with g++ on these machines, instant after).

    python frameworks/torch/build.py     # prints the built library's path

The collector never imports torch itself (it costs seconds and hundreds of
MB): it runs this module with the target's Python (``shim_library``).
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).with_name("msprof_torch.cpp")
BUILD_TIMEOUT_S = 600
# NDEBUG as libtorch's release build: torch's headers hold debug-only checks
# of members that the release library never sets.
CFLAGS = ["-O2", "-DNDEBUG"]   # a first build on a busy 2-core machine: ~35-90 s


class ShimUnavailable(Exception):
    """Why the shim cannot be had; the message is one line for the user."""


def cache_root() -> Path:
    base = os.environ.get("MSPROF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "msprof")
    return Path(base) / "torch"


def torch_build_id() -> str | None:
    """The installed torch's version and build (torch/version.py: version,
    git commit, CUDA: one wheel, hence one C++ ABI), read without importing
    torch (seconds); None when there is no torch."""
    import importlib.util
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    version_file = Path(list(spec.submodule_search_locations)[0]) / "version.py"
    try:
        text = version_file.read_text()
    except OSError:
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_dir(build_id: str) -> Path:
    src = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:12]
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_root() / f"torch-{build_id}-{py}-shim-{src}"


def build() -> str:
    """Builds (or finds) the shim for the torch importable here; its path."""
    build_id = torch_build_id()
    if build_id is None:
        raise SystemExit("no torch")
    out = cache_dir(build_id)
    name = "msprof_torch_shim"
    built = out / f"{name}.so"
    if built.exists():
        return str(built)
    from torch.utils import cpp_extension
    out.mkdir(parents=True, exist_ok=True)
    cpp_extension.load(name=name, sources=[str(SOURCE)], build_directory=str(out),
                       extra_cflags=CFLAGS, verbose=False)
    return str(built)


def shim_library(python: str = sys.executable) -> str:
    """The shim built for ``python``'s torch: its path, or ShimUnavailable
    saying what to install."""
    try:
        res = subprocess.run([python, str(Path(__file__).resolve())],
                             capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ShimUnavailable(f"building the PyTorch shim took over {BUILD_TIMEOUT_S} s") from None
    if res.returncode != 0 and "no torch" in res.stderr:
        raise ShimUnavailable(f"no torch in {python}'s environment (pip install 'msprof[torch]')")
    if res.returncode != 0:
        raise ShimUnavailable("cannot build the PyTorch shim: " + _why(res.stderr + res.stdout))
    path = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    if not os.path.exists(path):
        raise ShimUnavailable("the PyTorch shim's build left no library")
    return path


def _why(output: str) -> str:
    """One line out of a failed build's output, with what to install."""
    if "Ninja is required" in output:
        return "ninja is missing (pip install ninja)"
    if re.search(r"sys/sdt\.h: No such file", output):
        return "<sys/sdt.h> is missing (apt-get install systemtap-sdt-dev)"
    if re.search(r"(g\+\+|c\+\+|cc1plus)\S*: (not found|No such file)", output):
        return "no C++ compiler (apt-get install g++, or set CXX)"
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    lines = errors or output.strip().splitlines() or ["unknown error"]
    return lines[-1].strip()[:300]


if __name__ == "__main__":
    print(build())
