"""`commbench compare`: several runs side by side, the first the reference."""

from __future__ import annotations

from pathlib import Path

import typer

# `gate --priors` too: the between-run spread measured on the user's own machines
PRIORS_OPTION = typer.Option(
    None,
    help="TOML file of between-run spreads measured on your machines, over the shipped ones"
    ' (docs/gate.md, "Your own priors").',
)


def compare(
    runs: list[Path] = typer.Argument(..., help="Run directories; the first is the reference."),
    labels: str | None = typer.Option(None, help="Comma-separated labels, one per run."),
    markdown: Path | None = typer.Option(None, help="Write a markdown report here."),
    csv: Path | None = typer.Option(None, help="Write the per-row table as CSV here."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON on standard output instead of the tables."
    ),
    priors: Path | None = PRIORS_OPTION,
) -> None:
    """Side by side: each run's medians and ratios to the first, with significance."""
    from commbench.analysis.compare import run_compare
    from commbench.analysis.gate.priors import load_priors
    from commbench.output.writers import write_compare
    from commbench.paths import check_files

    check_files({"markdown": markdown, "csv": csv})
    comparison = run_compare(runs, split_labels(labels), load_priors(priors))
    write_compare(comparison, markdown, csv, as_json)


def split_labels(labels: str | None) -> list[str] | None:
    return None if labels is None else [label.strip() for label in labels.split(",")]
