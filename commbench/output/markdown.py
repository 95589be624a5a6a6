"""Markdown for PR comments and GitHub step summaries."""

from __future__ import annotations

import math

from commbench.analysis.compare import Comparison
from commbench.analysis.gate_verdict import GateResult, power_note
from commbench.export import number
from commbench.output.tables import (
    compare_aggregates,
    gate_rows,
    interval,
    markdown,
    markdown_table,
    multiple,
)
from commbench.output.units import format_time
from commbench.point import row_label


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
        lines += markdown_table(
            ["collective", "variant", "rows", "geomean", "99% interval", "detectable",
             "spread from", "status"],
            [
                [a.collective, a.variant, str(a.rows), f"{a.geomean:.3f}",
                 interval(a.low, a.high), multiple(a.detectable), a.spread or "-", a.status]
                for a in result.aggregates.itertuples()
            ],
        )  # fmt: skip
        lines += ["", power_note(result) + ".", ""]
    moved = gate_rows(result)
    if moved.rows:
        lines += ["### Rows that moved or could not be compared", "", *markdown(moved), ""]
    unchanged = result.counts["unchanged"]
    lines.append(f"{unchanged} row(s) unchanged (within tolerance).")
    return "\n".join(lines) + "\n"


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
        lines += markdown_table(
            ["field", *labels], [[k, *map(str, v)] for k, v in comparison.differs.items()]
        )
        lines.append("")
    same = ", ".join(f"`{k}={v}`" for k, v in comparison.same.items() if v)
    lines += [f"Same in every run: {same}", "", "### Geometric mean of ratios", ""]
    lines += markdown(compare_aggregates(comparison))
    lines += ["", "### Per row (median time; ratio [99% interval], * beyond it)", ""]
    header = [
        "row",
        *labels,
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
        body.append([row_label(row), *(format_time(row[f"{name} us"]) for name in labels), *ratios])
    lines += markdown_table(header, body)
    return "\n".join(lines) + "\n"
