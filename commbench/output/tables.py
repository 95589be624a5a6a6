"""Tables built once, drawn by every markup (hyperfine's `table_results`): the cells are
text; markdown draws them with pipes, the terminal with rich, colouring a status cell."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rich.table import Table

from commbench.analysis.compare import Comparison
from commbench.analysis.gate.verdict import (
    STATUSES,
    WINDOW_TESTS,
    GateResult,
    aggregate_name,
    current_words,
)
from commbench.output.cells import interval, multiple, number
from commbench.point import row_label
from commbench.units import format_time


@dataclass(frozen=True)
class Cells:
    header: list[str]
    rows: list[list[str]]
    left: int  # how many leading columns are text (aligned left); the rest are figures


def gate_rows(result: GateResult) -> Cells:
    """The rows that moved or could not be compared, worst first. `vs run`: the row's
    ratio over the overall one, what its test judges, with that test's interval. The
    current time is the geometric mean over the current runs judged together."""
    shown = sort_for_report(result.rows[result.rows["status"] != "unchanged"])
    return Cells(
        [
            "status",
            "row",
            "baseline",
            current_words(result),
            "ratio",
            "vs run",
            "interval",
            "tolerance",
            "p",
            "detectable",
        ],
        [
            [
                r["status"],
                row_label(r),
                format_time(r["baseline_us"]),
                format_time(r["current_us"]),
                number(r["ratio"], ".3f"),
                number(r["contrast"], ".3f"),
                interval(r["low"], r["high"]),
                f"{r['tolerance']:.0%}",
                number(r["p_value"], ".2g"),
                multiple(r["detectable"]),
            ]
            for _, r in shown.iterrows()
        ],
        left=2,
    )


def gate_aggregates(result: GateResult) -> Cells:
    """The overall test, then each collective/variant against the run (the window)."""
    return Cells(
        [
            "status",
            "test",
            "rows",
            "geomean",
            "vs run",
            "interval",
            "detectable",
            "asked",
            "spread from",
        ],
        [
            [
                a.status,
                aggregate_name(a._asdict()),
                str(a.rows),
                number(a.geomean, ".3f"),
                number(a.contrast, ".3f"),
                interval(a.low, a.high),
                multiple(a.detectable),
                multiple(a.detect),
                a.spread or "-",
            ]
            for a in result.aggregates.itertuples()
            if a.test in WINDOW_TESTS
        ],
        left=2,
    )


def gate_references(result: GateResult) -> Cells:
    """Against the pinned reference and the trend since it: each aggregate's ratio, its
    interval, the threshold it must pass to regress, and what it was judged against."""
    cells = []
    for a in result.aggregates.itertuples():
        if a.test in WINDOW_TESTS:
            continue
        if a.test == "pin":
            threshold, against = a.tolerance + 1, f"{a.baselines} pinned run(s); {a.spread or '-'}"
        else:
            threshold, against = a.tolerance + 1, f"the best level since {a.since}"
        cells.append(
            [
                a.status,
                aggregate_name(a._asdict()),
                str(a.rows),
                number(a.geomean, ".3f"),
                interval(a.low, a.high),
                multiple(threshold),
                against,
            ]
        )
    return Cells(
        ["status", "test", "rows", "ratio", "interval", "regresses beyond", "judged against"],
        cells,
        left=2,
    )


def compare_aggregates(comparison: Comparison) -> Cells:
    """The geometric mean of each other run's ratios per group, with its interval."""
    return Cells(
        ["run", "group", "rows", "geomean", "99% interval"],
        [
            [
                a.label,
                a.group,
                str(a.rows),
                number(a.ratio, ".3f"),
                f"{number(a.low, '.3f')} to {number(a.high, '.3f')}",
            ]
            for a in comparison.aggregates.itertuples()
        ],
        left=2,
    )


def sort_for_report(rows: pd.DataFrame) -> pd.DataFrame:
    """Grouped by status, worst status first; within a status, worst ratio first."""
    order = {status: i for i, status in enumerate(STATUSES)}
    return (
        rows.assign(_order=rows["status"].map(order))
        .sort_values(["_order", "ratio"], ascending=[True, False], na_position="last")
        .drop(columns="_order")
    )


def markdown(cells: Cells) -> list[str]:
    return markdown_table(cells.header, cells.rows)


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def rich(cells: Cells, title: str, styles: dict[str, str] | None = None) -> Table:
    """A rich table of the cells; a first cell found in `styles` is drawn in that style."""
    table = Table(title=title, min_width=len(title))  # the title on one line
    for i, name in enumerate(cells.header):
        table.add_column(name, justify="left" if i < cells.left else "right")
    for first, *rest in cells.rows:
        style = (styles or {}).get(first, "")
        table.add_row(f"[{style}]{first}[/{style}]" if style else first, *rest)
    return table
