"""The running processes ``msprof attach`` profiles, found through /proc.

A target is a process that maps msprof's runtime probe module (it imported
``msprof.runtime``): one of the pids given, or a descendant of one (the
ranks under ``mpiexec``).  Its probes are attached by the module's path as
the process maps it, so a job started from another installation of msprof
is profiled through its own module.  ``semaphores`` reads the probes'
semaphores from a process's memory: all zero once every tracer let go.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from msprof.errors import MsprofError
from msprof.probes.usdt import read_probes

# The runtime's native module as a process maps it: .../msprof/runtime/_usdt*.so
# (an installed package) or .../runtime/_usdt*.so (an editable checkout).
_MODULE = re.compile(r"/runtime/_usdt[^/]*\.so$")


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
            raise MsprofError(f"process {pid} ({name[:60]}) runs no msprof runtime, nor does any "
                              "process below it: msprof attach profiles programs that import "
                              "msprof.runtime")
    return [targets[p] for p in sorted(targets)]


def semaphores(pid: int, library: str) -> dict[str, int]:
    """Each USDT probe's semaphore as process ``pid`` holds it now: the
    number of tracers the kernel counts on it (0: nobody traces it)."""
    probes = read_probes(library)
    maps = _read(f"/proc/{pid}/maps")
    if maps is None:
        raise MsprofError(f"no process {pid}")
    regions = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == library:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            regions.append((start, end, int(fields[2], 16)))
    out = {}
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for name, probe in sorted(probes.items()):
            for start, end, offset in regions:
                if probe.semaphore_offset and offset <= probe.semaphore_offset < offset + end - start:
                    mem.seek(start + probe.semaphore_offset - offset)
                    out[name] = int.from_bytes(mem.read(2), "little")
                    break
    return out
