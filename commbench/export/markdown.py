"""Markdown for PR comments and GitHub step summaries."""

from __future__ import annotations

import math

import pandas as pd

from commbench.export import row_label
from commbench.gate import STATUSES, GateResult


def _number(value: float, spec: str) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:{spec}}"
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def gate_markdown(result: GateResult) -> str:
    lines = ["## commbench gate", "", f"**{result.verdict()}**", ""]
    if result.mismatches:
        lines.append("> **Warning: the runs are not alike.** Differing identity fields:")
        lines += [
            f"> - `{k}`: baseline `{b}`, current `{c}`" for k, (b, c) in result.mismatches.items()
        ]
        lines.append("")
    if len(result.aggregates):
        lines += ["### Geometric mean of current/baseline per collective and variant", ""]
        lines += _table(
            ["collective", "variant", "rows", "geomean", "99% interval", "status"],
            [
                [
                    a.collective,
                    a.variant,
                    str(a.rows),
                    f"{a.geomean:.3f}",
                    f"{a.low:.3f} to {a.high:.3f}",
                    a.status,
                ]
                for a in result.aggregates.itertuples()
            ],
        )
        lines.append("")
    shown = sort_for_report(result.rows[result.rows["status"] != "unchanged"])
    if len(shown):
        lines += ["### Rows that moved or could not be compared", ""]
        lines += _table(
            ["status", "row", "baseline us", "current us", "ratio", "tolerance", "p", "test"],
            [
                [
                    r["status"],
                    row_label(r),
                    _number(r["baseline_us"], ".1f"),
                    _number(r["current_us"], ".1f"),
                    _number(r["ratio"], ".3f"),
                    f"{r['tolerance']:.0%}",
                    _number(r["p_value"], ".2g"),
                    r["method"],
                ]
                for _, r in shown.iterrows()
            ],
        )
        lines.append("")
    unchanged = result.counts["unchanged"]
    lines.append(f"{unchanged} row(s) unchanged (within tolerance).")
    return "\n".join(lines) + "\n"


def sort_for_report(rows: pd.DataFrame) -> pd.DataFrame:
    """Grouped by status, worst status first; within a status, worst ratio first."""
    order = {status: i for i, status in enumerate(STATUSES)}
    return (
        rows.assign(_order=rows["status"].map(order))
        .sort_values(["_order", "ratio"], ascending=[True, False], na_position="last")
        .drop(columns="_order")
    )
