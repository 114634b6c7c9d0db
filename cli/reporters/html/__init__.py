"""``msprof report --html FILE``: the profile as one self-contained,
interactive HTML page (plotly charts; plotly.js inlined, so it opens offline).

:func:`~.data.gather` takes the data from the analyses, bounded in size
(:mod:`msprof.analysis.sampling`); :func:`~.page.render` builds the page;
:func:`write` does both and writes the file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from msprof.cli.reporters.html.data import ReportData, gather
from msprof.cli.reporters.html.page import SECTION_IDS, render
from msprof.errors import MsprofError

__all__ = ["ReportData", "gather", "render", "write", "SECTION_IDS", "target"]


def target(path: Path, profile_dirs: list[Path]) -> Path:
    """The file to write: ``path``, or ``<profile name>.html`` inside it when
    it is a directory."""
    if path.is_dir():
        return path / f"{Path(profile_dirs[0]).resolve().name}.html"
    if not path.parent.is_dir():
        raise MsprofError(f"cannot write {path}: no directory {path.parent}")
    return path


def write(profile, path: Path, rank: Optional[int] = None,
          window: Optional[tuple[int, int]] = None) -> int:
    """Writes the page for ``profile`` to ``path`` (whole or not at all);
    returns its size in bytes."""
    text = render(gather(profile, rank=rank, window=window)).encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(text)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise MsprofError(f"cannot write {path}: {e.strerror}") from None
    return len(text)
