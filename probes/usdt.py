"""USDT probe sites read from an ELF file's ``.note.stapsdt`` notes.

BCC can only enable a semaphore-guarded USDT probe for a given pid.  msprof
attaches by *library path* instead (one uprobe per probe for every process
that maps the library, the kernel raising the semaphore through the uprobe's
ref_ctr offset), so it needs, for each probe: the file offset of the probe
site, the file offset of its semaphore, and C code that reads its arguments
from the registers or the stack.  This module finds all three.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

from msprof.errors import MsprofError

# x86-64 register names in sdt argument specs -> struct pt_regs fields.
_REGS = {}
for _full, _field in [("ax", "ax"), ("bx", "bx"), ("cx", "cx"), ("dx", "dx"),
                      ("si", "si"), ("di", "di"), ("bp", "bp"), ("sp", "sp")]:
    for _name in (f"r{_full}", f"e{_full}", _full):
        _REGS[_name] = _field
for _n in range(8, 16):
    for _suffix in ("", "d", "w", "b"):
        _REGS[f"r{_n}{_suffix}"] = f"r{_n}"
_REGS.update({"al": "ax", "bl": "bx", "cl": "cx", "dl": "dx", "sil": "si",
              "dil": "di", "bpl": "bp", "spl": "sp", "rip": "ip"})

_ARG = re.compile(r"^(-?\d+)@(.+)$")
_MEM = re.compile(r"^(-?\d*)\(%(\w+)\)$")


@dataclass(frozen=True)
class Probe:
    provider: str
    name: str
    offset: int            # file offset of the probe site
    semaphore_offset: int  # file offset of the semaphore (0: none)
    args: tuple[str, ...]  # sdt argument specs, e.g. "-8@%rbp", "8@16(%rsp)"


def _file_offset(segments, vaddr: int) -> int:
    for seg in segments:
        start = seg["p_vaddr"]
        if start <= vaddr < start + seg["p_memsz"]:
            return vaddr - start + seg["p_offset"]
    raise MsprofError(f"address 0x{vaddr:x} is in no loadable segment")


def read_probes(path: str) -> dict[str, Probe]:
    """All USDT probes of the ELF file at ``path``, by name."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise MsprofError(f"cannot read {path}: {e.strerror}") from e
    with f:
        elf = ELFFile(f)
        segments = [s.header for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        base_section = elf.get_section_by_name(".stapsdt.base")
        notes = elf.get_section_by_name(".note.stapsdt")
        if notes is None:
            raise MsprofError(f"{path} has no USDT probes (.note.stapsdt)")
        probes = {}
        for note in notes.iter_notes():
            if note["n_name"] != "stapsdt":  # NT_STAPSDT notes only
                continue
            desc = note["n_descdata"]
            pc, base, sem = struct.unpack_from("<QQQ", desc, 0)
            provider, name, argstr = desc[24:].split(b"\0")[:3]
            if base_section is not None:  # the file may have been prelinked
                pc += base_section["sh_addr"] - base
                if sem:
                    sem += base_section["sh_addr"] - base
            probes[name.decode()] = Probe(
                provider=provider.decode(),
                name=name.decode(),
                offset=_file_offset(segments, pc),
                semaphore_offset=_file_offset(segments, sem) if sem else 0,
                args=tuple(argstr.decode().split()),
            )
        return probes


def _read_arg(spec: str, dest: str) -> str:
    """C statements that store one sdt argument into ``dest`` (an s64)."""
    m = _ARG.match(spec)
    if not m:
        raise MsprofError(f"unsupported USDT argument spec {spec!r}")
    size, loc = int(m.group(1)), m.group(2)
    ctype = {1: "s8", -1: "s8", 2: "s16", -2: "s16", 4: "s32", -4: "s32"}.get(size, "s64")
    if abs(size) in (1, 2, 4) and size > 0:
        ctype = "u" + ctype[1:]
    if loc.startswith("$"):
        return f"{dest} = ({ctype})({int(loc[1:], 0)});"
    if loc.startswith("%"):
        reg = _REGS.get(loc[1:])
        if reg is None:
            raise MsprofError(f"unsupported register in USDT argument {spec!r}")
        return f"{dest} = ({ctype})ctx->{reg};"
    mm = _MEM.match(loc)
    if mm:
        disp = int(mm.group(1) or "0")
        reg = _REGS.get(mm.group(2))
        if reg is None:
            raise MsprofError(f"unsupported register in USDT argument {spec!r}")
        return (f"{{ {ctype} v = 0; bpf_probe_read_user(&v, sizeof(v), "
                f"(void *)(ctx->{reg} + ({disp}))); {dest} = v; }}")
    raise MsprofError(f"unsupported USDT argument spec {spec!r}")


def entry_point(probe: Probe, handler: str, function: str | None = None) -> str:
    """A BPF function (``usdt_<name>`` unless ``function`` names it) that
    reads the probe's arguments into an s64 array and calls
    ``handler(ctx, args)``."""
    n = max(len(probe.args), 1)
    function = function or f"usdt_{probe.name}"
    body = [f"int {function}(struct pt_regs *ctx) {{", f"    s64 a[{n}] = {{0}};"]
    body += [f"    {_read_arg(spec, f'a[{i}]')}" for i, spec in enumerate(probe.args)]
    body += [f"    return {handler}(ctx, a);", "}"]
    return "\n".join(body)
