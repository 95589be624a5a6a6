"""`commbench history`: keep a rolling history of baseline runs for the gate (docs/ci.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from commbench.analysis.gate.history import KEEP, MAX_AGE_DAYS

app = typer.Typer(
    no_args_is_help=True,
    help="A rolling history of baseline runs: add a run, list the window.",
)

KEEP_OPTION = typer.Option(KEEP, help="Keep at most this many runs (the newest).")
AGE_OPTION = typer.Option(MAX_AGE_DAYS, help="Drop runs that started longer ago than this.")


@app.command()
def add(
    history: Path = typer.Argument(..., help="The history directory (made if missing)."),
    run: Path = typer.Argument(..., help="The run directory to add."),
    keep: int = KEEP_OPTION,
    max_age_days: float = AGE_OPTION,
) -> None:
    """Add RUN to HISTORY without gating it (to seed a history), then keep the window.
    Exit 3 if RUN is not comparable with the history's runs."""
    record_run(history, run, keep, max_age_days)


@app.command(name="list")
def list_runs(
    history: Path = typer.Argument(..., help="The history directory."),
) -> None:
    """The history's runs, oldest first, with what the gate will say it lacks."""
    from rich.console import Console

    from commbench.analysis.gate.history import history_notes, history_runs, started

    console = Console()
    runs = history_runs(history)
    for run in runs:
        hosts = ",".join(sorted(set(run.meta.hostnames))) or "-"
        console.print(f"{run.path.name}  started {started(run).isoformat()}  hosts {hosts}")
    console.print(f"{len(runs)} run(s) in {history}")
    if runs:  # the span (hosts: the gate compares them with the current run's)
        for note in history_notes(runs, runs[-1:]):
            console.print(f"[yellow]note: {note}[/yellow]", soft_wrap=True)


def record_run(history: Path, run: Path, keep: int, max_age_days: float) -> None:
    """Add the run and say what the window did; exit 3 when not comparable, naming what
    differs (the `gate --record` path too)."""
    from rich.console import Console

    from commbench.analysis.gate.history import NotComparable, history_notes, record
    from commbench.errors import ExitCode

    console = Console()
    try:
        done = record(history, run, keep, max_age_days)
    except NotComparable as refused:
        for name, (before, now) in refused.differs.items():
            console.print(f"not comparable: {name} differs: history {before}, run {now}")
        console.print(f"not recorded: {run} is not comparable with {history}")
        raise typer.Exit(ExitCode.NOT_COMPARABLE) from None
    console.print(
        f"recorded {run} as {done.path.name}: {len(done.runs)} run(s) in {history}"
        + (f", {len(done.dropped)} dropped by the window" if done.dropped else "")
    )
    for note in history_notes(done.runs, done.runs[-1:]):
        console.print(f"[yellow]note: {note}[/yellow]", soft_wrap=True)
