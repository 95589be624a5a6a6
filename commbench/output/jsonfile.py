"""JSON for machines: the gate's verdict, a comparison, a run: every row and aggregate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from rich.text import Text

from commbench.analysis.compare import Comparison
from commbench.analysis.gate.verdict import GateResult
from commbench.rundir.reader import Run


def gate_json(result: GateResult, path: Path) -> None:
    data = {
        "verdict": result.verdict(),
        "exit_code": result.exit_code,
        "counts": result.counts,
        "detect": result.detect,
        "notes": result.notes,
        "k_changes": result.k_changes,
        "pin": result.pin,
        "steps": result.steps,
        "baselines": result.baselines,
        "currents": result.currents,
        "mismatches": {k: {"baseline": b, "current": c} for k, (b, c) in result.mismatches.items()},
        "rows": json.loads(result.rows.to_json(orient="records")),
        "aggregates": json.loads(result.aggregates.to_json(orient="records")),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as JSON objects; NaN (not measured, no interval) as null."""
    return json.loads(table.to_json(orient="records"))


def compare_json(comparison: Comparison) -> str:
    """`compare --json`: what the terminal view shows, every figure, for machines."""
    data = {
        "labels": comparison.labels,
        "differs": comparison.differs,
        "same": comparison.same,
        "spread": comparison.spread or None,
        "rows": _records(comparison.rows),
        "aggregates": _records(comparison.aggregates),
    }
    return json.dumps(data, indent=2, default=str) + "\n"


def run_json(run: Run) -> str:
    """`report --json`: the run's summary in words, its list vs tensor verdicts, its rows
    and its meta.json, for machines."""
    from commbench.analysis.scenarios import scenario_lines
    from commbench.analysis.summary import problem_lines, side_by_side, verdict_lines

    comparison = side_by_side(run.results)
    data = {
        "label": run.label,
        "path": str(run.path),
        "summary": verdict_lines(comparison) + scenario_lines(comparison),
        "problems": [Text.from_markup(line).plain for line in problem_lines(run.results)],
        "comparison": _records(comparison),
        "results": _records(run.results),
        "meta": run.meta.model_dump(mode="json"),
    }
    return json.dumps(data, indent=2) + "\n"
