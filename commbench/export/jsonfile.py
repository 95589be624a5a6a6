"""JSON for machines: the verdict, the exit code, every row and aggregate."""

from __future__ import annotations

import json
from pathlib import Path

from commbench.analysis.gate_verdict import GateResult


def gate_json(result: GateResult, path: Path) -> None:
    data = {
        "verdict": result.verdict(),
        "exit_code": result.exit_code,
        "counts": result.counts,
        "detect": result.detect,
        "notes": result.notes,
        "k_changes": result.k_changes,
        "baselines": result.baselines,
        "current": result.current,
        "mismatches": {k: {"baseline": b, "current": c} for k, (b, c) in result.mismatches.items()},
        "rows": json.loads(result.rows.to_json(orient="records")),
        "aggregates": json.loads(result.aggregates.to_json(orient="records")),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
