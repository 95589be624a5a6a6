"""`commbench plot`: pictures of runs."""

from __future__ import annotations

from pathlib import Path

import typer


def plot(
    runs: list[Path] = typer.Argument(..., help="One or more run directories."),
    out: Path | None = typer.Option(None, help="Directory for the images (default: the run's)."),
    format: str = typer.Option("png", help="png or svg."),
) -> None:
    """Bandwidth and time against size per collective and split, and speedup heatmaps."""
    from commbench.output.plot import plot_runs
    from commbench.paths import check_directory

    if out is not None:
        check_directory("out", out)
    for path in plot_runs(runs, out, format):
        print(path)
