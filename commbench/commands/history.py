"""`commbench history`: the gate's history: a rolling window, a pinned reference, the runs of
unconfirmed alarms kept apart, and the whole series (docs/ci.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from commbench.analysis.gate.history import KEEP

app = typer.Typer(
    no_args_is_help=True,
    help="The gate's history: add a run, pin the accepted level, list it, draw its page.",
)

KEEP_OPTION = typer.Option(KEEP, help="Keep at most this many runs in the window (the newest).")
AGE_OPTION = typer.Option(
    None, help="Also drop window runs that started longer ago than this (default: by count only)."
)
COMMIT_OPTION = typer.Option(
    None, help="The commit the run measured, for the history page (default: $GITHUB_SHA, ...)."
)


@app.command()
def add(
    history: Path = typer.Argument(..., help="The history directory (made if missing)."),
    run: Path = typer.Argument(..., help="The run directory to add."),
    keep: int = KEEP_OPTION,
    max_age_days: float | None = AGE_OPTION,
    commit: str | None = COMMIT_OPTION,
) -> None:
    """Add RUN to HISTORY without gating it (to seed a history), then keep the window.
    Exit 3 if RUN is not comparable with the history's runs, 2 if it holds RUN already."""
    record_run(history, run, keep, max_age_days, commit)


@app.command()
def pin(
    history: Path = typer.Argument(..., help="The history directory."),
    runs: list[Path] = typer.Argument(
        ...,
        help="The runs of the level the project accepts: run directories or the names of"
        " runs in the history's window.",
    ),
    reason: str = typer.Option(..., help="Why this level is accepted (kept with the pin)."),
    by: str | None = typer.Option(None, help="Who pins it (default: $GITHUB_ACTOR or the user)."),
    if_unpinned: bool = typer.Option(
        False, help="Pin only where the history has no pin yet (how make gate seeds one)."
    ),
) -> None:
    """Pin RUNS as HISTORY's reference: every gate against HISTORY judges the cumulative
    shift against them. Only by hand; the pin before it is kept in history.json."""
    import getpass
    import os

    from rich.console import Console

    from commbench.analysis.gate.history import pin as pin_runs
    from commbench.analysis.gate.history import read_ledger

    if if_unpinned and (kept := read_ledger(history).pin) is not None:
        Console().print(f"kept the pin by {kept.by} at {kept.at}: {kept.reason}")
        return
    who = by or os.environ.get("GITHUB_ACTOR") or getpass.getuser()
    done = pin_runs(history, runs, reason, who)
    Console().print(f"pinned {len(done.runs)} run(s) in {history} by {done.by}: {done.reason}")


@app.command(name="list")
def list_runs(
    history: Path = typer.Argument(..., help="The history directory."),
) -> None:
    """The window's runs, oldest first; the pin; the quarantined runs; the steps the trend
    test finds since the pin; and what the gate will say the history lacks."""
    from commbench.console import make_console
    from commbench.errors import UsageError
    from commbench.output.history import show_history

    if not history.is_dir():
        raise UsageError(f"history: {str(history)!r} is not a directory")
    show_history(history, make_console())


@app.command()
def page(
    history: Path = typer.Argument(..., help="The history directory."),
    out: Path = typer.Option(..., help="The HTML file to write (one file: opens offline)."),
) -> None:
    """One self-contained HTML page of the history: each aggregate's series with the gate's
    band, the pinned level, the steps found and the quarantined runs; rows on demand."""
    from commbench.output.history_page import write_page
    from commbench.paths import check_file

    check_file("out", out)
    write_page(history, out)
    print(out)


def record_run(
    history: Path, run: Path, keep: int, max_age_days: float | None, commit: str | None
) -> None:
    """Add the run and say what the window did; exit 3 when not comparable, naming what
    differs (the `gate --record` path too)."""
    from rich.console import Console

    from commbench.analysis.gate.history import (
        NotComparable,
        commit_from_env,
        history_notes,
        record,
    )
    from commbench.errors import ExitCode

    console = Console()
    try:
        done = record(history, run, keep, max_age_days, commit=commit or commit_from_env())
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
