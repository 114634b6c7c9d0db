"""Builds the PyTorch shim against the torch that is installed, once.

The shim is a C++ extension (torch's own cpp_extension API) compiled for
one torch version, C++ ABI and Python; the result is kept in a cache keyed
by those and by the source, so a rebuild happens only when one of them
changes (~35 s with g++ on these machines, instant after).

    python frameworks/torch/build.py            # prints the built library's path
    python frameworks/torch/build.py --shared   # as root, for a script run as another user

The collector never imports torch itself (it costs seconds and hundreds of
MB): it runs this module with the target's Python (``shim_library``).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
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


# Where root keeps the shim for a script it runs as another user (sudo, or
# --user): root's own cache sits in a home only root may enter, so that
# user's Python could not load the shim from there.
SHARED_CACHE = "/var/cache/msprof"


def cache_root(shared: bool = False) -> Path:
    if shared:
        return Path(os.environ.get("MSPROF_SHARED_CACHE") or SHARED_CACHE) / "torch"
    base = os.environ.get("MSPROF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "msprof")
    return Path(base) / "torch"


def _root_only_dirs(path: Path) -> None:
    """Makes ``path`` and its missing parents root's, readable by all, and
    refuses one that anyone else could change: the library in it is loaded
    into another user's process and probed by root.  (A sticky directory
    such as /tmp may be writable by all: no one else can move root's
    entries in it.)"""
    for p in [*reversed(path.parents), path]:
        if not p.exists():
            p.mkdir()
            os.chmod(p, 0o755)          # whatever the umask
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise SystemExit(f"{p} is not a directory")
        sticky = st.st_mode & stat.S_ISVTX and p != path
        if st.st_uid != 0 or (st.st_mode & 0o022 and not sticky):
            raise SystemExit(f"{p} is not root's alone (owner {st.st_uid}, mode "
                             f"{stat.S_IMODE(st.st_mode):o})")


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


def cache_dir(build_id: str, shared: bool = False) -> Path:
    src = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:12]
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_root(shared) / f"torch-{build_id}-{py}-shim-{src}"


def build(shared: bool = False) -> str:
    """Builds (or finds) the shim for the torch importable here; its path.
    ``shared``: in root's cache that other users can read (root only)."""
    build_id = torch_build_id()
    if build_id is None:
        raise SystemExit("no torch")
    name = "msprof_torch_shim"
    if shared:
        if os.geteuid() != 0:
            raise SystemExit("the shared cache is root's (run as root)")
        out = cache_dir(build_id, shared=True)
        _root_only_dirs(out)
        built = out / f"{name}.so"
        if not built.exists():
            own = Path(build(shared=False))     # root's own build, copied
            tmp = out / f".{name}.so.{os.getpid()}"
            shutil.copyfile(own, tmp)
            tmp.chmod(0o755)
            tmp.rename(built)
        return str(built)
    out = cache_dir(build_id)
    built = out / f"{name}.so"
    if built.exists():
        return str(built)
    from torch.utils import cpp_extension
    out.mkdir(parents=True, exist_ok=True)
    cpp_extension.load(name=name, sources=[str(SOURCE)], build_directory=str(out),
                       extra_cflags=CFLAGS, verbose=False)
    return str(built)


def shim_library(python: str = sys.executable, shared: bool = False) -> str:
    """The shim built for ``python``'s torch: its path, or ShimUnavailable
    saying what to install.  ``shared``: one that another user's script can
    load (see SHARED_CACHE)."""
    try:
        res = subprocess.run([python, str(Path(__file__).resolve()), *(["--shared"] if shared else [])],
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
    print(build(shared="--shared" in sys.argv[1:]))
