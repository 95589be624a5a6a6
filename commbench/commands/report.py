"""`commbench report`: a run's summary rendered again from its files."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from commbench.errors import UsageError


def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by sweep."),
    markdown: Path | None = typer.Option(
        None, help="Also write the summary, environment and tables here, for a GitHub issue."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON on standard output instead of the summary."
    ),
) -> None:
    """Re-render a run's summary from its files (does not import torch)."""
    from commbench.paths import check_files

    check_files({"markdown": markdown})
    if as_json:
        from commbench.output.jsonfile import run_json
        from commbench.rundir.reader import read_run

        run = read_run(run_dir)
        sys.stdout.write(run_json(run))
    else:
        from commbench.output.summary import render_run

        run = render_run(run_dir)
    if run.incomplete:
        print(f"commbench: warning: {run.incomplete}", file=sys.stderr)
    if markdown:
        from commbench.output.run_markdown import run_markdown

        try:
            markdown.write_text(run_markdown(run))
        except OSError as err:
            raise UsageError(
                f"markdown: {str(markdown)!r} cannot be written: {err.strerror}"
            ) from None
