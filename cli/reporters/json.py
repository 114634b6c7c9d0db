"""``--format json``: the report as one JSON document."""
from __future__ import annotations

import json
from typing import TextIO

from msprof.analysis.report import to_json


def render(doc: dict, file: TextIO) -> None:
    """Writes ``doc`` (from :func:`msprof.analysis.report.build`) as one
    JSON document and a newline."""
    json.dump(to_json(doc), file, indent=2, allow_nan=False)
    file.write("\n")
