"""What ``msprof doctor --fix`` sets up on this machine for the eBPF backend,
wherever msprof was installed (a checkout's .venv, or ``pip install`` into
any virtualenv).

BCC's Python package is not on PyPI: distributions ship it with their own
Python (Debian's python3-bpfcc in /usr/lib/python3/dist-packages).  It is
pure ctypes over libbcc, so any Python 3 can import it; a virtualenv sees
it through a ``.pth`` file naming a folder that holds only a link to it
(putting all of dist-packages on the path would bring in Debian's old
copies of other packages).  scripts/setup.sh does the same for the
checkout's .venv.
"""
from __future__ import annotations

import glob
import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

from msprof.errors import MsprofError

# Where distributions install BCC's Python package (Debian/Ubuntu first).
SYSTEM_BCC_GLOBS = ("/usr/lib/python3/dist-packages/bcc",
                    "/usr/lib/python3*/site-packages/bcc",
                    "/usr/lib64/python3*/site-packages/bcc",
                    "/usr/local/lib/python3*/dist-packages/bcc")
PTH_NAME = "msprof-bcc.pth"
LINK_FOLDER = "bcc-path"      # in the environment's prefix, as scripts/setup.sh names it


def find_system_bcc() -> str | None:
    """The folder of a system-wide BCC Python package, if one is installed."""
    for pattern in SYSTEM_BCC_GLOBS:
        for found in sorted(glob.glob(pattern)):
            if os.path.isfile(os.path.join(found, "__init__.py")):
                return found
    return None


def bcc_link_paths() -> tuple[Path, Path]:
    """(the .pth file, the folder it names) for this Python environment."""
    site = Path(sysconfig.get_paths()["purelib"])
    return site / PTH_NAME, Path(sys.prefix) / LINK_FOLDER


def link_command(bcc: str) -> str:
    """The one shell command that makes this environment see ``bcc``."""
    pth, folder = bcc_link_paths()
    return f"mkdir -p {folder} && ln -sfn {bcc} {folder}/bcc && echo {folder} > {pth}"


def link_system_bcc() -> str:
    """Makes this environment import the system's BCC; says what it did."""
    bcc = find_system_bcc()
    if bcc is None:
        raise MsprofError("no system BCC to link: install it first "
                          "(apt-get install python3-bpfcc bpfcc-tools)")
    pth, folder = bcc_link_paths()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / "bcc"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(bcc)
        pth.write_text(f"{folder}\n")
    except OSError as e:
        raise MsprofError(f"cannot link BCC into {sys.prefix}: {e.strerror or e}") from None
    if str(folder) not in sys.path:          # this process too, for the checks that follow
        sys.path.append(str(folder))
    return f"linked {bcc} into {sys.prefix} ({pth} -> {folder})"


def mount_tracefs() -> str:
    r = subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise MsprofError(f"cannot mount tracefs: {r.stderr.strip() or r.returncode}")
    return "mounted tracefs on /sys/kernel/tracing"


def link_kernel_headers() -> str:
    """Links /lib/modules/$(uname -r)/{build,source} to the newest installed
    Debian header packages (BCC compiles against them; the programs read
    tracepoint arguments and helpers only, so any recent set works)."""
    amd64 = sorted(glob.glob("/usr/src/linux-headers-*-amd64"))
    common = sorted(glob.glob("/usr/src/linux-headers-*-common"))
    if not amd64 or not common:
        raise MsprofError("no kernel headers to link: apt-get install linux-headers-amd64")
    modules = Path("/lib/modules") / platform.release()
    try:
        modules.mkdir(parents=True, exist_ok=True)
        for name, target in (("build", amd64[-1]), ("source", common[-1])):
            link = modules / name
            if link.is_symlink():
                link.unlink()
            elif link.exists():
                raise MsprofError(f"{link} exists and is not a link: left as it is")
            link.symlink_to(target)
    except OSError as e:
        raise MsprofError(f"cannot link kernel headers in {modules}: {e.strerror or e}") from None
    return f"linked {modules}/build -> {amd64[-1]}, source -> {common[-1]}"
