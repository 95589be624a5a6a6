"""The gate's verdict: each row's and aggregate's status, the exit code they make, and
what the gate could have seen. What the exporters draw; gate.py computes it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from commbench.analysis.gate.model import Judged
from commbench.errors import ExitCode

# Worst first: the order of the report and of the exit-code precedence.
STATUSES = (
    "regression",
    "failed",
    "lost",
    "missing",
    "insufficient",
    "noise",
    "unstable",
    "new",
    "skipped",
    "improvement",
    "unchanged",
)


def status(
    ratio: float,
    judged: Judged,
    tolerance: float,
    detect: float = math.inf,
    unstable: bool = False,
) -> str:
    """The status of a row or an aggregate, from its own ratio and its test.

    No spread to judge with is `insufficient`. A regression it saw is one, whatever its
    power; otherwise a test that cannot see the asked shift (`detect`: aggregates ask
    it, rows do not) is `insufficient`. Beyond the tolerance but not significant is
    `noise`, or `unstable` when the samples scatter (cv >= 0.10): one to look at, never
    a failure.
    """
    if judged.spread is None:
        return "insufficient"
    if ratio > 1 + tolerance and judged.slower:
        return "regression"
    if judged.detectable > detect:
        return "insufficient"
    if ratio < 1 - tolerance and judged.faster:
        return "improvement"
    if abs(ratio - 1) <= tolerance:
        return "unchanged"
    return "unstable" if unstable else "noise"


# The window's tests: an aggregate of them that cannot see the asked shift is insufficient
WINDOW_TESTS = ("overall", "collective")

AGGREGATE_COLUMNS = [
    "test",  # "overall" (every row), "collective" (one collective/variant against the run),
    # "pin" (every row, or one collective/variant, against the pinned runs), "trend" (the
    # latest level since the pin against the best before it)
    "collective",
    "variant",
    "rows",
    "geomean",  # its own geometric mean of current/baseline
    "contrast",  # a collective's geomean over the overall one (what its test judges)
    "low",  # the judged quantity's interval: the low end above 1 is a regression
    "high",
    "tolerance",
    "detectable",  # the smallest shift of it alone caught 9 times in 10
    "detect",  # the shift asked for
    "needed",  # baseline runs in all that would see the asked shift (NaN: none would)
    "baselines",
    "currents",  # current runs judged together (their mean)
    "spread_sd",
    "spread_df",
    "spread",
    "status",
    "since",  # trend: the first run of the best level it was compared with
]


@dataclass
class GateResult:
    rows: pd.DataFrame  # one per key: status, ratio, contrast, p_value, method, medians
    aggregates: pd.DataFrame  # the overall test and one per collective/variant
    mismatches: dict[str, tuple]  # identity fields that differ (baseline value, current)
    allow_missing: bool
    allow_mismatch: bool
    allow_lost: bool = False
    allow_insufficient: bool = False
    detect: float = math.nan  # the shift that must be seen (a ratio)
    k_changes: list[str] = field(default_factory=list)  # rows whose K differs
    steps: list[dict] = field(default_factory=list)  # steps found in the history's series
    pin: dict | None = None  # the history's pinned reference: runs, reason, by, at
    notes: list[str] = field(default_factory=list)  # what the history lacks
    baselines: list[str] = field(default_factory=list)
    currents: list[str] = field(default_factory=list)  # judged together

    @property
    def counts(self) -> dict[str, int]:
        counted = self.rows["status"].value_counts()
        return {status: int(counted.get(status, 0)) for status in STATUSES}

    @property
    def aggregate_regressions(self) -> pd.DataFrame:
        return self.aggregates[self.aggregates["status"] == "regression"]

    @property
    def aggregates_insufficient(self) -> pd.DataFrame:
        """The window's tests that cannot see the asked shift (the pin and the trend only
        add regressions)."""
        window = self.aggregates["test"].isin(WINDOW_TESTS)
        return self.aggregates[window & (self.aggregates["status"] == "insufficient")]

    @property
    def not_comparable(self) -> bool:
        return bool(self.mismatches) and not self.allow_mismatch

    @property
    def insufficient(self) -> bool:
        """Something the asked shift could hide in: an aggregate that cannot see it, or
        rows with no spread at all."""
        return bool(self.counts["insufficient"] or len(self.aggregates_insufficient))

    @property
    def young(self) -> bool:
        """Whether what the gate cannot see is the baseline's youth: every window test
        short of the asked shift has no spread yet, or would see it with more baseline
        runs. Not young where some test would not with any number of runs (the spread
        itself is too wide), nor where nothing is short."""
        lacking = self.aggregates_insufficient
        if lacking.empty and not self.counts["insufficient"]:
            return False
        no_spread = lacking["spread"].eq("")
        more = lacking["needed"] > lacking["baselines"]
        return bool((no_spread | more).all())

    @property
    def judged_code(self) -> ExitCode:
        """The exit code the verdict itself gives, before --allow-insufficient: what a
        history admits a run on."""
        return replace(self, allow_insufficient=False).exit_code

    @property
    def exit_code(self) -> ExitCode:
        counts = self.counts
        if self.not_comparable:
            return ExitCode.NOT_COMPARABLE
        lost = counts["lost"] and not self.allow_lost
        if counts["regression"] or counts["failed"] or lost or len(self.aggregate_regressions):
            return ExitCode.REGRESSION
        if counts["missing"] and not self.allow_missing:
            return ExitCode.NOT_COMPARABLE
        if self.insufficient and not self.allow_insufficient:
            return ExitCode.INSUFFICIENT  # nothing regressed that could be seen: not a pass
        return ExitCode.OK

    def insufficient_hint(self) -> str:
        """Why the gate cannot see the asked shift, and what more data would buy."""
        lacking = self.aggregates_insufficient
        asked = f"cannot see the asked shift ({self.detect:.2f}x)"
        if lacking.empty or lacking["spread"].eq("").all():
            return (
                f"{asked}: no between-run spread (no prior for this backend): add baseline"
                " runs, a history of at least 2 (how many depends on the spread they show)"
            )
        worst = lacking.loc[lacking["detectable"].idxmax()]
        had = int(worst["baselines"])
        what = f"{asked}: {aggregate_name(worst)} detectable {worst['detectable']:.2f}x"
        if lacking["needed"].isna().any():
            return (
                f"{what}; at this spread no number of baseline runs would do: more rounds"
                " per run, a history that shows a narrower spread, or a larger --detect"
            )
        more = int(lacking["needed"].max()) - had
        return f"{what}; add {more} baseline run(s) ({had} now) or more rounds per run"

    def verdict(self) -> str:
        counts = self.counts
        code = self.exit_code
        if self.not_comparable:
            return "NOT COMPARABLE: " + ", ".join(self.mismatches) + " differ (--allow-mismatch)"
        parts = [f"{n} {status}" for status, n in counts.items() if n]
        if len(self.aggregate_regressions):
            names = ", ".join(aggregate_name(a) for _, a in self.aggregate_regressions.iterrows())
            parts.append(f"aggregate regression: {names}")
        if self.insufficient:
            parts.append(self.insufficient_hint())
        if counts["lost"] and self.allow_lost:
            parts.append("lost rows allowed (--allow-lost)")
        words = {
            ExitCode.OK: "PASS",
            ExitCode.REGRESSION: "REGRESSION",
            ExitCode.INSUFFICIENT: "INSUFFICIENT",
        }
        return f"{words.get(code, 'NOT COMPARABLE')}: " + ", ".join(parts)


def aggregate_name(aggregate: Any) -> str:
    """`overall`, `all_gather/list`, and for the pin and the trend `pin overall`, ..."""
    group = aggregate["collective"]
    named = "overall" if group == "all" else f"{group}/{aggregate['variant']}"
    return named if aggregate["test"] in WINDOW_TESTS else f"{aggregate['test']} {named}"


def current_words(result: GateResult) -> str:
    """The current side in words: `current`, or `3 current runs` judged together."""
    count = len(result.currents)
    return "current" if count <= 1 else f"{count} current runs"


def power_note(result: GateResult) -> str:
    """What the gate could see: each test's minimum detectable shift (caught 9 times in
    10) against the shift asked for, and with how many current runs where several."""
    judged = result.aggregates.dropna(subset=["detectable"])
    asked = f"asked {result.detect:.2f}x"
    if len(result.currents) > 1:
        asked += f", {current_words(result)} together"
    if judged.empty:
        return f"minimum detectable shift: none could be computed ({asked})"
    overall = judged[judged["test"] == "overall"]
    groups = judged[judged["test"] == "collective"]
    parts = []
    if len(overall):
        parts.append(f"overall {overall['detectable'].iloc[0]:.2f}x")
    if len(groups):
        parts.append(
            f"one collective alone {groups['detectable'].min():.2f}x to"
            f" {groups['detectable'].max():.2f}x"
        )
    rows = result.rows["detectable"].dropna()
    if len(rows):
        parts.append(f"one row alone {rows.min():.2f}x and up")
    source = judged["spread"].iloc[0]
    return f"minimum detectable shift (caught 9 in 10; {asked}): {', '.join(parts)}, from {source}"
