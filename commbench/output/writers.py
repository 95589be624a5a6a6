"""The one place that maps the outputs a command was asked for to their writers
(hyperfine's exporter table): `compare` and `gate` only compute; what they found is
drawn on the terminal and written to each file requested here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from commbench.analysis.compare import Comparison
from commbench.analysis.gate.verdict import GateResult
from commbench.console import make_console
from commbench.output.jsonfile import compare_json, gate_json
from commbench.output.junit import gate_junit
from commbench.output.markdown import compare_markdown, gate_markdown
from commbench.output.terminal import render_compare, render_gate


def write_compare(
    comparison: Comparison, markdown: Path | None, csv: Path | None, as_json: bool = False
) -> None:
    """The terminal view, or with `as_json` JSON on standard output; then each file."""
    if as_json:
        sys.stdout.write(compare_json(comparison))
    else:
        render_compare(comparison, make_console())
    if markdown:
        markdown.write_text(compare_markdown(comparison))
    if csv:
        comparison.rows.to_csv(csv, index=False)


def write_gate(
    result: GateResult, markdown: Path | None, junit: Path | None, json: Path | None
) -> None:
    """The terminal view, then each file asked for; the markdown also goes to GitHub's
    step summary when the job has one."""
    render_gate(result, make_console())
    report = gate_markdown(result)
    if markdown:
        markdown.write_text(report)
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a") as handle:
            handle.write(report)
    if junit:
        gate_junit(result, junit)
    if json:
        gate_json(result, json)
