"""Is the eBPF backend usable here, and if not, what is missing and how to fix it.

Shared by ``msprof run`` (to fall back, or refuse to) and ``msprof doctor``.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from msprof.profiler.system_setup import find_system_bcc, link_command


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _mounted(path: str) -> bool:
    try:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == path for line in f)
    except OSError:
        return False


def checkout_root() -> Path | None:
    """The repository msprof runs from (an editable install), else None (a
    wheel: no scripts/ beside the package)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "scripts" / "setup.sh").is_file() else None


def _bcc_fix() -> str:
    bcc = find_system_bcc()
    if bcc is None:
        return "apt-get install python3-bpfcc bpfcc-tools, then msprof doctor --fix"
    return f"msprof doctor --fix (links {bcc} into this environment; by hand: {link_command(bcc)})"


CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def _effective_caps() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def _bpf_privileged() -> tuple[bool, str]:
    caps = _effective_caps()
    has = lambda cap: bool(caps >> cap & 1)  # noqa: E731
    if has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON)):
        return True, f"euid {os.geteuid()}, CAP_BPF and CAP_PERFMON held"
    return False, f"euid {os.geteuid()} without CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN)"


def checks() -> list[Check]:
    out = []
    ok, detail = _bpf_privileged()
    out.append(Check("privileges", ok, detail,
                     "run as root (sudo msprof run ...): loading BPF programs needs CAP_BPF and CAP_PERFMON"))
    try:
        import bcc  # noqa: F401
        out.append(Check("bcc", True, "BCC Python package importable"))
    except Exception as e:  # ImportError, or libbcc failing to load
        out.append(Check("bcc", False, f"cannot import bcc: {e}", _bcc_fix()))
    kv = platform.release()
    build = f"/lib/modules/{kv}/build"
    has_headers = (os.path.exists(os.path.join(build, "Makefile"))
                   and os.path.exists(f"/lib/modules/{kv}/source/include/linux/kconfig.h")) \
        or os.path.exists("/sys/kernel/kheaders.tar.xz")
    out.append(Check("kernel headers", has_headers, build if has_headers else f"{build} missing",
                     "apt-get install linux-headers-amd64, then msprof doctor --fix (links "
                     "/lib/modules/$(uname -r)/{build,source} to them)"))
    tracefs = _mounted("/sys/kernel/tracing") or _mounted("/sys/kernel/debug")
    out.append(Check("tracefs", tracefs, "mounted" if tracefs else "not mounted",
                     "msprof doctor --fix (mount -t tracefs nodev /sys/kernel/tracing)"))
    btf = os.path.exists("/sys/kernel/btf/vmlinux")
    out.append(Check("kernel BTF", btf, "/sys/kernel/btf/vmlinux" if btf else "absent (optional)"))
    try:
        from msprof.profiler.library import runtime_probe_library
        lib = runtime_probe_library()
        out.append(Check("runtime probes", True, lib))
    except Exception as e:
        out.append(Check("runtime probes", False, str(e),
                         "pip install -e . (builds msprof.runtime._usdt)" if checkout_root() else
                         "pip install --force-reinstall msprof (its wheel holds the built module)"))
    return out


REQUIRED = ("privileges", "bcc", "kernel headers", "tracefs", "runtime probes")


def unavailable_reason() -> str | None:
    """None when eBPF can be used, else the first missing requirement."""
    for c in checks():
        if c.name in REQUIRED and not c.ok:
            return f"{c.name}: {c.detail}"
    return None
