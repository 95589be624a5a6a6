"""The gate's verdict: each row's and aggregate's status, the exit code they make, and
what the gate could have seen. What the exporters draw; gate.py computes it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from commbench.analysis.stats import Spread, detectable_shift, family_confidence
from commbench.errors import ExitCode

INSUFFICIENT_HINT = (
    "too little data to judge (no between-run spread: gate against a history of"
    " baseline runs, e.g. `make baseline`)"
)

# Worst first: the order of the report and of the exit-code precedence.
STATUSES = (
    "regression",
    "failed",
    "missing",
    "insufficient",
    "noise",
    "unstable",
    "new",
    "improvement",
    "unchanged",
)


@dataclass
class GateResult:
    rows: pd.DataFrame  # one per key: status, ratio, p_value, method, tolerance, medians
    aggregates: pd.DataFrame  # one per collective and variant: geomean with its interval
    mismatches: dict[str, tuple]  # identity fields that differ (baseline value, current)
    allow_missing: bool
    allow_mismatch: bool
    baselines: list[str] = field(default_factory=list)
    current: str = ""

    @property
    def counts(self) -> dict[str, int]:
        counted = self.rows["status"].value_counts()
        return {status: int(counted.get(status, 0)) for status in STATUSES}

    @property
    def aggregate_regressions(self) -> pd.DataFrame:
        return self.aggregates[self.aggregates["status"] == "regression"]

    @property
    def aggregates_insufficient(self) -> int:
        return int((self.aggregates["status"] == "insufficient").sum())

    @property
    def exit_code(self) -> ExitCode:
        counts = self.counts
        if self.mismatches and not self.allow_mismatch:
            return ExitCode.NOT_COMPARABLE
        if counts["regression"] or counts["failed"] or len(self.aggregate_regressions):
            return ExitCode.REGRESSION
        if counts["missing"] and not self.allow_missing:
            return ExitCode.NOT_COMPARABLE
        if counts["insufficient"] or self.aggregates_insufficient:
            return ExitCode.NOT_COMPARABLE  # nothing regressed that could be seen: not a pass
        return ExitCode.OK

    def verdict(self) -> str:
        counts = self.counts
        code = self.exit_code
        if code == ExitCode.NOT_COMPARABLE and self.mismatches and not self.allow_mismatch:
            return "NOT COMPARABLE: " + ", ".join(self.mismatches) + " differ (--allow-mismatch)"
        parts = [f"{n} {status}" for status, n in counts.items() if n]
        if len(self.aggregate_regressions):
            parts.append(f"{len(self.aggregate_regressions)} aggregate regression(s)")
        if self.aggregates_insufficient:
            parts.append(f"{self.aggregates_insufficient} aggregate(s) insufficient")
        if counts["insufficient"] or self.aggregates_insufficient:
            parts.append(INSUFFICIENT_HINT)
        word = {ExitCode.OK: "PASS", ExitCode.REGRESSION: "REGRESSION"}.get(code, "NOT COMPARABLE")
        return f"{word}: " + ", ".join(parts)


def power_note(result: GateResult, more_runs: int = 20) -> str:
    """What the gate could have seen, and what a longer history would buy: the minimum
    detectable shifts (caught 9 times in 10), with the same spread and `more_runs`
    baseline runs (the spread then known from that many more runs too)."""
    judged = result.aggregates.dropna(subset=["detectable"])
    if judged.empty:
        return "minimum detectable shift: none (no collective/variant could be judged)"
    worst = judged.loc[judged["detectable"].idxmax()]
    note = (
        f"minimum detectable shift (caught 9 in 10): aggregates {judged['detectable'].min():.2f}x"
        f" to {worst['detectable']:.2f}x, rows {result.rows['detectable'].min():.2f}x and up,"
        f" from {worst['spread']}"
    )
    if worst["baselines"] < more_runs:
        extra = more_runs - worst["baselines"]
        spread = Spread(worst["spread_sd"], worst["spread_df"] + extra, "")
        confidence = family_confidence(len(result.aggregates))
        better = detectable_shift(spread, more_runs, worst["tolerance"], confidence)
        note += f"; with {more_runs} baseline runs about {better:.2f}x"
    return note
