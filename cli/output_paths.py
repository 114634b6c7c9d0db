"""Output paths msprof writes as root: never through a symbolic link.

A profile is often written and exported as root; a link planted where the
output goes (``out.json -> /etc/shadow``) would have root overwrite what it
points at.  The profile directory itself is opened link-safe
(profiler/outdir.py); exports and the HTML report check their target here.
"""
from __future__ import annotations

from pathlib import Path

from msprof.errors import MsprofError


def refuse_links(out: Path) -> None:
    """One line, not a write, when ``out`` or an entry of it (a directory
    output) is a symbolic link."""
    links = [out] if out.is_symlink() else []
    if not links and out.is_dir():
        links = [p for p in out.iterdir() if p.is_symlink()]
    if links:
        raise MsprofError(f"{links[0]} is a symbolic link; msprof does not write through links "
                          "(remove it, or choose another output)")
