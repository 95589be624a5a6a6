"""Markdown for PR comments and GitHub step summaries."""

from __future__ import annotations

import math

import pandas as pd

from commbench.compare import Comparison
from commbench.export import number, row_label
from commbench.gate import STATUSES, GateResult, power_note


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
            ["collective", "variant", "rows", "geomean", "99% interval", "detectable",
             "spread from", "status"],
            [
                [a.collective, a.variant, str(a.rows), f"{a.geomean:.3f}",
                 interval(a.low, a.high), multiple(a.detectable), a.spread or "-", a.status]
                for a in result.aggregates.itertuples()
            ],
        )  # fmt: skip
        lines += ["", power_note(result) + ".", ""]
    shown = sort_for_report(result.rows[result.rows["status"] != "unchanged"])
    if len(shown):
        lines += ["### Rows that moved or could not be compared", ""]
        lines += _table(
            ["status", "row", "baseline us", "current us", "ratio", "99% interval", "tolerance",
             "p", "detectable"],
            [
                [r["status"], row_label(r), number(r["baseline_us"], ".1f"),
                 number(r["current_us"], ".1f"), number(r["ratio"], ".3f"),
                 interval(r["low"], r["high"]), f"{r['tolerance']:.0%}",
                 number(r["p_value"], ".2g"), multiple(r["detectable"])]
                for _, r in shown.iterrows()
            ],
        )  # fmt: skip
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


def interval(low: float, high: float) -> str:
    """An interval's cell; empty where there is none (too little data to judge)."""
    return "" if math.isnan(low) else f"{low:.3f} to {high:.3f}"


def multiple(value: float) -> str:
    """A shift as a factor (1.25x); empty where it could not be computed."""
    return number(value, ".2f") and f"{value:.2f}x"


def compare_markdown(comparison: Comparison) -> str:
    labels = comparison.labels
    lines = [
        "## commbench compare",
        "",
        f"Reference: **{labels[0]}**; ratios are time / reference; {comparison.spread_note}.",
        "",
    ]
    if comparison.differs:
        lines += ["What differs between the runs:", ""]
        lines += _table(
            ["field", *labels], [[k, *map(str, v)] for k, v in comparison.differs.items()]
        )
        lines.append("")
    same = ", ".join(f"`{k}={v}`" for k, v in comparison.same.items() if v)
    lines += [f"Same in every run: {same}", "", "### Geometric mean of ratios", ""]
    lines += _table(
        ["run", "group", "rows", "geomean", "99% interval"],
        [
            [a.label, a.group, str(a.rows), number(a.ratio, ".3f"),
             f"{number(a.low, '.3f')} to {number(a.high, '.3f')}"]
            for a in comparison.aggregates.itertuples()
        ],
    )  # fmt: skip
    lines += ["", "### Per row (median us; ratio [99% interval], * beyond it)", ""]
    header = [
        "row",
        *(f"{label} us" for label in labels),
        *(f"{name}/{labels[0]}" for name in labels[1:]),
    ]
    body = []
    for _, row in comparison.rows.iterrows():
        ratios = [
            number(row[f"{name} ratio"], ".3f")
            + (f" [{number(row[f'{name} low'], '.2f')}-{number(row[f'{name} high'], '.2f')}]"
               if not math.isnan(row[f"{name} low"]) else "")
            + (" *" if row[f"{name} significant"] else "")
            for name in labels[1:]
        ]  # fmt: skip
        body.append(
            [row_label(row), *(number(row[f"{name} us"], ".1f") for name in labels), *ratios]
        )
    lines += _table(header, body)
    return "\n".join(lines) + "\n"
