"""The end-of-run summary: where the tensor form wins, by how much, and where it does not.

Reads a run directory only (pandas, rich): it never imports torch, so `commbench
report DIR` renders the same summary on any machine.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from commbench.analysis.scenarios import (
    ROUTING,
    padding_cost,
    padding_lines,
    round_trip,
    round_trip_lines,
    scenario_lines,
)
from commbench.analysis.summary import (
    failed_line,
    in_order,
    problem_lines,
    side_by_side,
    verdict_lines,
)
from commbench.console import make_console
from commbench.point import width_label
from commbench.rundir.reader import Run, measured, read_run
from commbench.units import format_size, format_time


def _speedup_cell(row: pd.Series) -> str:
    colour = {"win": "green", "loss": "red", "unstable": "yellow"}.get(row["verdict"], "")
    text = f"{row['speedup']:.2f}x"
    return f"[{colour}]{text}[/{colour}]" if colour else text


def comparison_tables(comparison: pd.DataFrame) -> list[Table]:
    """One table per collective, split, dtype and hidden size: list vs tensor by tokens."""
    tables = []
    by = ["collective", "tp", "dp", "dtype", "hidden", "vocab", *ROUTING]
    for (collective, tp, dp, dtype, *_), rows in comparison.groupby(by, sort=False):
        width = width_label(rows.iloc[0])
        table = Table(title=f"{collective}  tp={tp} dp={dp}  {dtype} {width}")
        for name in ("tokens", "bytes", "list", "tensor", "list/tensor", "tensor busbw"):
            table.add_column(name, justify="right")
        table.add_column("notes")
        for _, row in rows.iterrows():
            notes = ""
            if row["padded_tokens_tensor"] != row["tokens"]:
                notes = f"pad {row['padded_tokens_tensor']}"
            if row["padded_vocab_tensor"] != row["vocab"]:
                notes += f"pad V {row['padded_vocab_tensor']}"
            if row["note_list"]:
                notes += "*"
            table.add_row(
                str(row["tokens"]),
                format_size(row["bytes_tensor"]),
                format_time(row["time_us_list"]),
                format_time(row["time_us_tensor"]),
                _speedup_cell(row),
                f"{row['busbw_gbps_tensor']:.2f} GB/s",
                notes,
            )
        tables.append(table)
    return tables


def single_variant_table(results: pd.DataFrame, collective: str) -> Table | None:
    rows = measured(results[results["collective"] == collective])
    if rows.empty:
        return None
    table = Table(title=f"{collective} (reference, tensor form only)")
    for name in ("tp", "dp", "dtype", "hidden", "tokens", "bytes", "time", "busbw"):
        table.add_column(name, justify="right")
    for _, row in rows.iterrows():
        table.add_row(
            *(str(row[c]) for c in ("tp", "dp", "dtype", "hidden", "tokens")),
            format_size(row["bytes"]),
            format_time(row["time_us"]),
            f"{row['busbw_gbps']:.2f} GB/s",
        )
    return table


def render(run: Run, console: Console) -> None:
    results = in_order(run.results, ["collective", "variant"])
    comparison = in_order(side_by_side(results), ["collective"])
    compared = set(comparison["collective"])
    for table in comparison_tables(comparison):
        console.print(table)
    for collective in results["collective"].unique():
        if collective not in compared:
            table = single_variant_table(results, collective)
            if table is not None:
                console.print(table)
    console.print(
        "list/tensor > 1: the tensor form is faster (green/red: beyond noise; yellow: unstable,"
        " no verdict). pad N: the tensor form pads the tokens to N, a multiple of tp, while the"
        " list form runs uneven; * the list form ran as the note below says."
    )
    for note in sorted(set(results["note"]) - {""}):
        console.print(f"* {note}")
    console.print(
        f"[bold]Summary[/bold] ({run.label}, {run.meta.backend}, world {run.meta.world_size}):"
    )
    for line in verdict_lines(comparison):
        console.print(f"- {line}")
    console.print("[bold]By serving phase[/bold] (speedup = list / tensor):")
    for line in scenario_lines(comparison):
        console.print(f"- {line}")
    for line in padding_lines(padding_cost(results)):
        console.print(f"- {line}")
    for line in round_trip_lines(round_trip(results)):
        console.print(f"- {line}")
    for line in problem_lines(results):
        console.print(f"- {line}")
    console.print(f"Files: {run.path}")


def render_run(path: Path, console: Console | None = None) -> Run:
    run = read_run(path)
    render(run, console or make_console())
    return run


def show_finished_run(path: Path, console: Console) -> None:
    """What a sweep shows on rank 0 when it ends: the summary, where its time went (with
    --profile-phases), and how many points failed their check or were skipped, and why."""
    run = render_run(path, console)
    if run.meta.config.profile_phases and run.meta.phases:
        render_phases(run.meta.phases, console)
    if failed := failed_line(run.results):
        console.print(f"[red]{failed}[/red]")
    checks = run.results["check"]
    if skipped := skipped_line(run.results.loc[checks == "skipped", "note"]):
        console.print(f"[yellow]{skipped}[/yellow]")


# Why a point was skipped, from its note (the sweep's words), in the order looked for
SKIP_REASONS = (
    ("over --max-bytes", "over --max-bytes"),
    ("out of memory", "out of memory"),
    ("can have", "over the memory a rank can have"),
)
REFUSED = "refused by the backend"


def skip_reason(note: str) -> str:
    return next((reason for words, reason in SKIP_REASONS if words in note), REFUSED)


def skipped_line(notes: pd.Series) -> str | None:
    """'N point(s) skipped (2 over --max-bytes, 1 out of memory): see their note', or None."""
    if notes.empty:
        return None
    counts = notes.fillna("").map(skip_reason).value_counts()
    why = ", ".join(f"{count} {reason}" for reason, count in counts.items())
    return f"{len(notes)} point(s) skipped ({why}), not measured: see their note"


def render_phases(phases: dict[str, float], console: Console) -> None:
    """`--profile-phases`: the table of where the points' time went (rank 0)."""
    steps = phases["steps"] or float("nan")
    table = Table(title="Time per phase (rank 0)")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    for phase, seconds in phases.items():
        table.add_row(phase, f"{seconds:.3f}", f"{seconds / steps:.1%}")
    console.print(table)
