"""`commbench export`: every measured row as a benchmark tracker reads it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from commbench.errors import UsageError
from commbench.export.formats import FORMATS


def export(
    runs: list[Path] = typer.Argument(..., help="One or more run directories."),
    format: str = typer.Option(
        ..., help="; ".join(f"{e.name}: {e.help}" for e in FORMATS.values()) + "."
    ),
    out: Path | None = typer.Option(None, help="Write here instead of standard output."),
) -> None:
    """Every measured row as a benchmark tracker reads it; skipped and failed rows are
    left out (said on standard error)."""
    from commbench.export import measured_rows
    from commbench.paths import check_files
    from commbench.rundir.reader import read_run

    if format not in FORMATS:
        raise UsageError(f"format: must be one of {', '.join(FORMATS)} (got {format!r})")
    check_files({"out": out})
    measured, left_out = measured_rows([read_run(path) for path in runs])
    counts = ", ".join(f"{n} {check}" for check, n in sorted(left_out.items()))
    if not measured:  # a tracker rejects an empty list: said here, where the cause is known
        raise UsageError(f"runs: no measured row to export ({counts or 'no rows'})")
    if left_out:
        total = sum(left_out.values())
        print(
            f"commbench: export: left out {total} row(s) not measured ({counts})", file=sys.stderr
        )
    text = FORMATS[format].render(measured)
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            out.write_text(text)
        except OSError as err:
            raise UsageError(f"out: {str(out)!r} cannot be written: {err.strerror}") from None
