"""`commbench export`: every measured row as a benchmark tracker reads it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from commbench.errors import UsageError


def export(
    runs: list[Path] = typer.Argument(..., help="One or more run directories."),
    format: str = typer.Option(
        ...,
        help="bencher: Bencher Metric Format JSON (bencher run --adapter json); github:"
        " github-action-benchmark's customSmallerIsBetter list.",
    ),
    out: Path | None = typer.Option(None, help="Write here instead of standard output."),
) -> None:
    """Every measured row as a benchmark tracker reads it; skipped and failed rows are
    left out (said on standard error)."""
    from commbench.export import measured_rows
    from commbench.export.bencher import bencher_json
    from commbench.export.github import github_json
    from commbench.output.paths import check_files
    from commbench.rundir.reader import read_run

    formats = {"bencher": bencher_json, "github": github_json}
    if format not in formats:
        raise UsageError(f"format: must be one of {', '.join(formats)} (got {format!r})")
    check_files({"out": out})
    measured, left_out = measured_rows([read_run(path) for path in runs])
    counts = ", ".join(f"{n} {check}" for check, n in sorted(left_out.items()))
    if not measured:  # a tracker rejects an empty list: said here, where the cause is known
        raise UsageError(f"runs: no measured row to export ({counts or 'no rows'})")
    if left_out:
        print(f"commbench: export: left out {sum(left_out.values())} row(s) not measured"
              f" ({counts})", file=sys.stderr)  # fmt: skip
    text = formats[format](measured)
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            out.write_text(text)
        except OSError as err:
            raise UsageError(f"out: {str(out)!r} cannot be written: {err.strerror}") from None
