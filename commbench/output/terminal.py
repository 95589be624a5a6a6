"""The gate's terminal view: worst first, grouped by status, unchanged rows folded."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from commbench.analysis.compare import Comparison
from commbench.analysis.gate.verdict import GateResult, power_note
from commbench.errors import ExitCode
from commbench.output.history import step_line
from commbench.output.tables import (
    compare_aggregates,
    gate_aggregates,
    gate_references,
    gate_rows,
    rich,
)
from commbench.point import row_label
from commbench.rundir.identity import describe_diff
from commbench.units import format_time

STYLE = {
    "regression": "red",
    "failed": "red",
    "lost": "red",
    "missing": "yellow",
    "insufficient": "yellow",
    "improvement": "green",
}


def render_gate(result: GateResult, console: Console) -> None:
    """Which settings differ first, before any table: when the runs are not comparable
    that is the answer, and the tables below it are only a guide."""
    for name, (before, now) in result.mismatches.items():
        word = "warning" if result.allow_mismatch else "not comparable"
        console.print(
            f"[yellow]{word}: {name} differs: baseline {before}, current {now}[/yellow]",
            soft_wrap=True,
        )
    for note in result.notes:
        console.print(f"[yellow]note: {note}[/yellow]", soft_wrap=True)
    if result.k_changes:
        console.print(
            f"[yellow]note: K (operations per sample) is new in {len(result.k_changes)}"
            f" row(s): {'; '.join(result.k_changes[:5])}[/yellow]",
            soft_wrap=True,
        )
    moved = gate_rows(result)
    if moved.rows:
        title = "commbench gate: rows that moved or could not be compared"
        console.print(rich(moved, title, STYLE))
    console.print(f"{result.counts['unchanged']} row(s) unchanged (within tolerance).")
    if len(result.aggregates):
        title = "the overall shift and each collective against the run"
        console.print(rich(gate_aggregates(result), title, STYLE))
    references = gate_references(result)
    if references.rows:
        title = "against the pinned reference, and the latest level since it"
        console.print(rich(references, title, STYLE))
    for step in result.steps:
        console.print(f"step: {step_line(step)}", soft_wrap=True)
    console.print(power_note(result), soft_wrap=True)
    colour = {ExitCode.OK: "green", ExitCode.REGRESSION: "red"}.get(result.exit_code, "yellow")
    console.print(
        f"[bold {colour}]{result.verdict()}[/bold {colour}] (exit {result.exit_code})",
        soft_wrap=True,  # one line, whatever the width: CI logs grep for it
    )


def _ratio_cell(row: Any, label: str) -> str:
    ratio = row[f"{label} ratio"]
    if math.isnan(ratio):
        return ""
    interval = f" [{row[f'{label} low']:.2f}-{row[f'{label} high']:.2f}]"
    text = f"{ratio:.3f}{'' if math.isnan(row[f'{label} low']) else interval}"
    if not row[f"{label} significant"]:
        return text
    colour = "red" if ratio > 1 else "green"
    return f"[{colour}]{text} *[/{colour}]"


def render_compare(comparison: Comparison, console: Console) -> None:
    labels = comparison.labels
    for line in describe_diff(comparison.differs, labels):  # before any table
        console.print(f"[yellow]differs[/yellow] {line}", soft_wrap=True, highlight=False)
    console.print(f"Reference: [bold]{labels[0]}[/bold]; ratios are time / reference time.")
    console.print(comparison.spread_note, soft_wrap=True)
    same = ", ".join(f"{name}={value}" for name, value in comparison.same.items() if value)
    console.print(f"same: {same}", soft_wrap=True)
    table = Table(title="median (busbw GB/s) per run; ratio [99% interval], * beyond it")
    table.add_column("row")
    for label in labels:
        table.add_column(label, justify="right")
    for label in labels[1:]:
        table.add_column(f"{label}/{labels[0]}", justify="right")
    for _, row in comparison.rows.iterrows():
        cells = [
            ""
            if math.isnan(row[f"{label} us"])
            else f"{format_time(row[f'{label} us'])} ({row[f'{label} busbw']:.2f})"
            for label in labels
        ]
        table.add_row(row_label(row), *cells, *(_ratio_cell(row, label) for label in labels[1:]))
    console.print(table)
    title = "geometric mean of ratios (99% interval from the between-run spread)"
    console.print(rich(compare_aggregates(comparison), title))
