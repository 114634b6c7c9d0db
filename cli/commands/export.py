"""``msprof export``: a profile in formats other tools read."""
from __future__ import annotations

import enum
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

import msprof
from msprof.cli.commands.flame import Metric
from msprof.cli.help import command
from msprof.errors import MsprofError


class To(str, enum.Enum):
    parquet = "parquet"
    csv = "csv"
    chrome = "chrome"
    hta = "hta"
    folded = "folded"


SUMMARY_CHROME_NOTE = ("note: a summary-mode profile has no kernel or memory timeline: "
                       "the trace holds its steps, collectives and CPU waits "
                       "(record with --mode trace for kernels)")

# Default output, beside the current directory, named after the profile.
_DEFAULT = {To.parquet: "{name}-parquet", To.csv: "{name}-csv", To.chrome: "{name}.trace.json",
            To.hta: "{name}-hta", To.folded: "{name}.folded"}


def export(
    dirs: Annotated[list[Path], typer.Argument(
        metavar="DIR", help="Profile directory; several (one per node) merge by rank.")],
    to: Annotated[To, typer.Option(
        "--to", "-t", help="parquet / csv (one file per table, in a directory), chrome "
        "(trace JSON for Perfetto), hta (per-rank traces for Holistic Trace Analysis, in a "
        "directory), folded (stacks for flamegraph.pl, inferno, speedscope).")],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="PATH", help="Where to write (default: named after DIR, "
        "in the current directory).")] = None,
    metric: Annotated[Metric, typer.Option(
        "--metric", "-m", help="folded only: device, launch, comm or memory.")] = Metric.device,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite an existing output.")] = False,
) -> None:
    """Export a profile: parquet, csv, chrome (Perfetto), hta, folded stacks."""
    from msprof.analysis.exporters import chrome, folded, hta, tables
    from msprof.cli.output_paths import refuse_links

    profile = msprof.load(dirs[0] if len(dirs) == 1 else dirs)
    out = output or Path(_DEFAULT[to].format(name=dirs[0].resolve().name))
    if out.exists() and not force:
        if out.is_file() or any(out.iterdir()):
            raise MsprofError(f"{out} exists (use --force to overwrite, or -o PATH)")
    if to is not To.folded and metric is not Metric.device:
        raise MsprofError("--metric applies to --to folded only")
    if out.resolve() in [d.resolve() for d in dirs]:
        raise MsprofError(f"{out} is the profile itself; choose another -o PATH")
    refuse_links(out)
    t0 = time.perf_counter()
    try:
        if to in (To.parquet, To.csv):
            written = tables.export(profile, out, to.value)
        elif to is To.chrome:
            written = [chrome.export(profile, out)]
        elif to is To.hta:
            written = hta.export(profile, out)
        else:
            written = [folded.export(profile, out, metric=metric.value)]
    except OSError as e:
        raise MsprofError(f"cannot write {out}: {e.strerror or e}") from None
    size = sum(p.stat().st_size for p in written)
    console = Console(stderr=True)
    console.print(
        f"wrote {out} ({len(written)} file{'s' if len(written) != 1 else ''}, "
        f"{size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)", highlight=False)
    if to is To.chrome and profile.summary_mode:
        console.print(SUMMARY_CHROME_NOTE, highlight=False)


def register(app: typer.Typer) -> None:
    command(app, "msprof export OUT --to chrome            # open OUT.trace.json in ui.perfetto.dev",
            "msprof export OUT --to folded -m memory -o mem.folded",
            "msprof export OUT --to parquet -o tables --force")(export)
