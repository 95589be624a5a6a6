"""Markdown for PR comments and GitHub step summaries."""

from __future__ import annotations

import math

from commbench.analysis.compare import Comparison
from commbench.analysis.gate.verdict import GateResult, power_note
from commbench.output.cells import number
from commbench.output.history import step_line
from commbench.output.tables import (
    compare_aggregates,
    gate_aggregates,
    gate_references,
    gate_rows,
    markdown,
    markdown_table,
)
from commbench.point import row_label
from commbench.units import format_time


def gate_markdown(result: GateResult) -> str:
    lines = ["## commbench gate", ""]
    if result.mismatches:  # which settings differ: before the verdict and any table
        word = "Warning: the runs are not alike" if result.allow_mismatch else "Not comparable"
        lines.append(f"> **{word}.** Differing identity fields:")
        lines += [
            f"> - `{k}`: baseline `{b}`, current `{c}`" for k, (b, c) in result.mismatches.items()
        ]
        lines.append("")
    lines += [f"**{result.verdict()}**", ""]
    lines += [f"- Note: {note}" for note in result.notes]
    if result.k_changes:
        lines.append(f"- Note: K (operations per sample) is new: {'; '.join(result.k_changes)}")
    if result.notes or result.k_changes:
        lines.append("")
    if len(result.aggregates):
        lines += ["### The overall shift and each collective against the run", ""]
        lines += markdown(gate_aggregates(result))
        lines += ["", power_note(result) + ".", ""]
    references = gate_references(result)
    if references.rows:
        lines += ["### Against the pinned reference, and the latest level since it", ""]
        lines += [*markdown(references), ""]
    lines += [f"- Step: {step_line(step)}" for step in result.steps]
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
            + (
                f" [{number(row[f'{name} low'], '.2f')}-{number(row[f'{name} high'], '.2f')}]"
                if not math.isnan(row[f"{name} low"])
                else ""
            )
            + (" *" if row[f"{name} significant"] else "")
            for name in labels[1:]
        ]
        body.append([row_label(row), *(format_time(row[f"{name} us"]) for name in labels), *ratios])
    lines += markdown_table(header, body)
    return "\n".join(lines) + "\n"
