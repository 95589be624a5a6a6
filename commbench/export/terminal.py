"""The gate's terminal view: worst first, grouped by status, unchanged rows folded."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from commbench.export import row_label
from commbench.export.markdown import sort_for_report
from commbench.gate import EXIT_PASS, EXIT_REGRESSION, GateResult

STYLE = {"regression": "red", "failed": "red", "missing": "yellow", "improvement": "green"}


def _cell(value: float, spec: str) -> str:
    return "" if math.isnan(value) else f"{value:{spec}}"


def render_gate(result: GateResult, console: Console) -> None:
    for name, (before, now) in result.mismatches.items():
        console.print(f"[yellow]warning: {name} differs: baseline {before}, current {now}[/yellow]")
    shown = sort_for_report(result.rows[result.rows["status"] != "unchanged"])
    if len(shown):
        table = Table(title="commbench gate: rows that moved or could not be compared")
        for name in ("status", "row", "baseline", "current", "ratio", "tol", "p"):
            table.add_column(name, justify="left" if name in ("status", "row") else "right")
        for _, row in shown.iterrows():
            style = STYLE.get(row["status"], "")
            table.add_row(
                f"[{style}]{row['status']}[/{style}]" if style else row["status"],
                row_label(row),
                _cell(row["baseline_us"], ".1f"),
                _cell(row["current_us"], ".1f"),
                _cell(row["ratio"], ".3f"),
                f"{row['tolerance']:.0%}",
                _cell(row["p_value"], ".2g"),
            )
        console.print(table)
    console.print(f"{result.counts['unchanged']} row(s) unchanged (within tolerance).")
    for a in result.aggregates.itertuples():
        style = STYLE.get(a.status, "")
        status = f"[{style}]{a.status}[/{style}]" if style else a.status
        console.print(
            f"geomean {a.collective}/{a.variant}: {a.geomean:.3f} (99% {a.low:.3f} to"
            f" {a.high:.3f}, {a.rows} rows, tolerance {a.tolerance:.0%}): {status}"
        )
    colour = {EXIT_PASS: "green", EXIT_REGRESSION: "red"}.get(result.exit_code, "yellow")
    console.print(
        f"[bold {colour}]{result.verdict()}[/bold {colour}] (exit {result.exit_code})",
        soft_wrap=True,  # one line, whatever the width: CI logs grep for it
    )
