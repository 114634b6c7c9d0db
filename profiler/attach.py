"""Attaching BPF programs to USDT probes by library path.

Debian's python3-bpfcc declares libbcc's ``bpf_attach_uprobe`` with six
arguments while the library takes seven: the semaphore (ref_ctr) offset it
passes is whatever lies on the stack.  msprof calls the seven-argument
function itself, through its own handle on libbcc, with the semaphore's file
offset read from the ELF note.  With pid -1 the kernel raises the semaphore
in every process that maps the library, including ones started later: the
probes are live before the profiled script fires its first one.
"""
from __future__ import annotations

import ctypes as ct
import os

from msprof.errors import MsprofError
from msprof.probes.usdt import Probe

_lib = None


def _libbcc():
    global _lib
    if _lib is None:
        lib = ct.CDLL("libbcc.so.0", use_errno=True)
        lib.bpf_attach_uprobe.restype = ct.c_int
        lib.bpf_attach_uprobe.argtypes = [ct.c_int, ct.c_int, ct.c_char_p, ct.c_char_p,
                                          ct.c_uint64, ct.c_int, ct.c_uint32]
        lib.bpf_detach_uprobe.restype = ct.c_int
        lib.bpf_detach_uprobe.argtypes = [ct.c_char_p]
        lib.bpf_close_perf_event_fd.restype = ct.c_int
        lib.bpf_close_perf_event_fd.argtypes = [ct.c_int]
        _lib = lib
    return _lib


class UprobeLink:
    """One attached uprobe; ``close()`` detaches it."""

    def __init__(self, ev_name: bytes, fd: int):
        self.ev_name = ev_name
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            lib = _libbcc()
            lib.bpf_close_perf_event_fd(self.fd)
            lib.bpf_detach_uprobe(self.ev_name)
            self.fd = -1


def attach_usdt(prog_fd: int, library: str, probe: Probe, pid: int = -1) -> UprobeLink:
    """Attach the loaded program ``prog_fd`` to ``probe`` of ``library``."""
    lib = _libbcc()
    ev_name = (f"msprof_{os.getpid()}_{probe.name}_{probe.offset:x}"
               + (f"_{pid}" if pid >= 0 else "")).encode()
    fd = lib.bpf_attach_uprobe(prog_fd, 0, ev_name, library.encode(),
                               probe.offset, pid, probe.semaphore_offset)
    if fd < 0:
        err = ct.get_errno()
        raise MsprofError(
            f"cannot attach to USDT probe {probe.provider}:{probe.name} of {library}: "
            f"{os.strerror(err) if err else 'libbcc refused'}")
    return UprobeLink(ev_name, fd)
