"""The running processes ``msprof attach`` profiles, found through /proc.

A target is a process that maps msprof's runtime probe module (it imported
``msprof.runtime``): one of the pids given, or a descendant of one (the
ranks under ``mpiexec``).  Its probes are attached by the module's path as
the process maps it, so a job started from another installation of msprof
is profiled through its own module.  ``semaphores`` reads the probes'
semaphores from a process's memory: all zero once every tracer let go;
``request_announcements`` asks it to announce itself again.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

from msprof.errors import MsprofError
from msprof.probes.usdt import read_probes

# The runtime's native module as a process maps it: .../msprof/runtime/_usdt*.so
# (an installed package) or .../runtime/_usdt*.so (an editable checkout).
_MODULE = re.compile(r"/runtime/_usdt[^/]*\.so$")
# The word a late tracer adds one to, to have a process announce again.
ANNOUNCE_REQUEST = "msrt_announce_request"


@dataclass(frozen=True)
class Target:
    pid: int
    library: str          # the runtime probe module it maps
    command: tuple[str, ...]


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def command_line(pid: int) -> tuple[str, ...]:
    raw = _read(f"/proc/{pid}/cmdline") or ""
    return tuple(a for a in raw.split("\0") if a)


def _parent(pid: int) -> int | None:
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses
    return int(stat[stat.rindex(")") + 2:].split()[1])


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return sorted(out)


def _mapping(pid: int) -> tuple[str, int] | None:
    """(path, inode) of the runtime probe module ``pid`` maps, if any."""
    maps = _read(f"/proc/{pid}/maps")
    for line in (maps or "").splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and _MODULE.search(fields[5].removesuffix(" (deleted)")):
            return fields[5], int(fields[4])
    return None


def _maps_torch(pid: int) -> bool:
    """Whether ``pid`` has PyTorch's C++ library loaded (it imported torch)."""
    return "/libtorch_cpu.so" in (_read(f"/proc/{pid}/maps") or "")


def runtime_library(pid: int) -> str | None:
    """Path of the runtime probe module ``pid`` maps (None: it runs no
    msprof runtime); an error when that file was replaced since."""
    found = _mapping(pid)
    if found is None:
        return None
    path, inode = found
    try:
        same = not path.endswith(" (deleted)") and os.stat(path).st_ino == inode
    except OSError:
        same = False
    if not same:
        raise MsprofError(f"process {pid} runs a runtime module that was since replaced "
                          f"({path.removesuffix(' (deleted)')}): its probes cannot be reached "
                          "by path; restart it to profile it")
    return path


def find_targets(pids: list[int]) -> list[Target]:
    """The processes to attach to: each pid given that runs msprof's runtime,
    and every such descendant of a pid given (the ranks under mpiexec)."""
    targets: dict[int, Target] = {}
    for pid in pids:
        if pid <= 0 or not os.path.isdir(f"/proc/{pid}"):
            raise MsprofError(f"no process {pid}")
        found = 0
        for p in [pid, *descendants(pid)]:
            lib = runtime_library(p)
            if lib is not None:
                targets[p] = Target(p, lib, command_line(p))
                found += 1
        if not found:
            name = " ".join(command_line(pid)) or "?"
            torch = [p for p in [pid, *descendants(pid)] if _maps_torch(p)]
            if torch:
                raise MsprofError(
                    f"process {torch[0]} ({' '.join(command_line(torch[0]))[:60] or '?'}) runs "
                    "PyTorch, whose probes msprof's shim brings, and msprof loads the shim only "
                    f"into processes it starts: profile it from its start with msprof run -- "
                    f"{shlex.join(command_line(pid))[:200]}")
            raise MsprofError(f"process {pid} ({name[:60]}) runs no msprof runtime, nor does any "
                              "process below it: msprof attach profiles programs that import "
                              "msprof.runtime")
    return [targets[p] for p in sorted(targets)]


def _regions(pid: int, library: str) -> list[tuple[int, int, int]]:
    """(start, end, file offset) of each mapping of ``library`` in ``pid``."""
    maps = _read(f"/proc/{pid}/maps")
    if maps is None:
        raise MsprofError(f"no process {pid}")
    out = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == library:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            out.append((start, end, int(fields[2], 16)))
    return out


def _address(regions, file_offset: int) -> int | None:
    for start, end, offset in regions:
        if offset <= file_offset < offset + end - start:
            return start + file_offset - offset
    return None


def semaphores(pid: int, library: str) -> dict[str, int]:
    """Each USDT probe's semaphore as process ``pid`` holds it now: 0 when
    nobody traces the probe there (the kernel counts the processes where a
    probe is attached, not the tracers)."""
    probes = read_probes(library)
    regions = _regions(pid, library)
    out = {}
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for name, probe in sorted(probes.items()):
            at = _address(regions, probe.semaphore_offset) if probe.semaphore_offset else None
            if at is not None:
                mem.seek(at)
                out[name] = int.from_bytes(mem.read(2), "little")
    return out


def _symbol_file_offset(library: str, name: str) -> int:
    with open(library, "rb") as f:
        elf = ELFFile(f)
        segments = [s.header for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        for table in (".dynsym", ".symtab"):
            section = elf.get_section_by_name(table)
            found = section.get_symbol_by_name(name) if section is not None else None
            if found:
                vaddr = found[0]["st_value"]
                for seg in segments:
                    if seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
                        return vaddr - seg["p_vaddr"] + seg["p_offset"]
    raise MsprofError(f"{library} has no {name}: a runtime older than msprof attach; "
                      "restart the job with this msprof to attach to it")


def request_announcements(pid: int, library: str) -> None:
    """Asks process ``pid`` to announce its device, operators and staging
    areas again (runtime/_usdt.c: ``msrt_announce_request``), at its next
    step or hand-over of staged records."""
    at = _address(_regions(pid, library), _symbol_file_offset(library, ANNOUNCE_REQUEST))
    if at is None:
        raise MsprofError(f"process {pid} does not map {library} as expected")
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
        mem.seek(at)
        value = int.from_bytes(mem.read(4), "little")
        mem.seek(at)
        mem.write(((value + 1) & 0xFFFFFFFF).to_bytes(4, "little"))
