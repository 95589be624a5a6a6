"""`commbench gate`: the CI regression gate, its exit code the verdict."""

from __future__ import annotations

from pathlib import Path

import typer

from commbench.errors import UsageError


def gate(
    runs: list[Path] = typer.Argument(
        ...,
        help="BASELINE... CURRENT: one or more baseline runs (or directories of runs, a "
        "history), then the current run.",
    ),
    tolerance: float | None = typer.Option(
        None, help="Relative change a row may show before it can regress (default per backend)."
    ),
    aggregate_tolerance: float | None = typer.Option(
        None, help="The same for the geometric mean over a collective's rows."
    ),
    rules: Path | None = typer.Option(None, help="TOML file of per-row tolerances."),
    allow_missing: bool = typer.Option(False, help="Rows missing from CURRENT do not fail."),
    allow_mismatch: bool = typer.Option(False, help="Compare even if versions/config differ."),
    markdown: Path | None = typer.Option(None, help="Write a markdown report here."),
    junit: Path | None = typer.Option(None, help="Write JUnit XML here (one testcase per row)."),
    json: Path | None = typer.Option(None, help="Write the full verdict as JSON here."),
) -> None:
    """Exit 0 if CURRENT has no regression against BASELINE, 1 if it has, 3 if not comparable."""
    from commbench.analysis.gate import run_gate
    from commbench.analysis.rules import load_rules
    from commbench.output.paths import check_files, step_summary
    from commbench.output.writers import write_gate

    check_files({"markdown": markdown, "junit": junit, "json": json, **step_summary()})
    if len(runs) < 2:
        raise UsageError("runs: need at least a BASELINE and a CURRENT run directory")
    for name, value in (("tolerance", tolerance), ("aggregate-tolerance", aggregate_tolerance)):
        if value is not None and not 0 < value < 10:
            raise UsageError(f"{name}: must be a positive fraction such as 0.05 (got {value})")
    result = run_gate(
        runs[:-1],
        runs[-1],
        tolerance=tolerance,
        aggregate_tolerance=aggregate_tolerance,
        rules=load_rules(rules),
        allow_missing=allow_missing,
        allow_mismatch=allow_mismatch,
    )
    write_gate(result, markdown, junit, json)
    raise typer.Exit(result.exit_code)
