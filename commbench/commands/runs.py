"""`commbench runs`: the runs in a results folder, and whether each is complete."""

from __future__ import annotations

from pathlib import Path

import typer


def runs(
    folder: Path = typer.Argument(
        Path("results"),
        metavar="DIR",
        help="Where to look for run directories (searched recursively).",
    ),
) -> None:
    """List the run directories under DIR: label, start, backend, world, points recorded of
    those planned, and whether the run is complete (does not import torch)."""
    from commbench.console import make_console
    from commbench.output.runs import run_list
    from commbench.output.tables import rich

    found = run_list(folder)
    console = make_console()
    if not found.rows:
        console.print(f"no run directories under {folder}")
        return
    console.print(rich(found, f"runs under {folder}"))
