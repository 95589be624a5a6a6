"""The CI regression gate: judge a current run against one baseline run or a history.

Pure functions of result directories (pandas, numpy, scipy): never imports torch.
The exit code is the contract: 0 pass, 1 regression, 2 bad input, 3 not comparable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from commbench.errors import UsageError
from commbench.identity import identity_diff
from commbench.results import KEY_COLUMNS, RESULTS_CSV, read_run
from commbench.rules import Rules
from commbench.stats import UNSTABLE_CV, geomean_interval, shift_test
from commbench.timings import Timings, timings_by_key

EXIT_PASS, EXIT_REGRESSION, EXIT_USAGE, EXIT_NOT_COMPARABLE = 0, 1, 2, 3

# Default tolerances per backend: how far a median may move before it can count as a
# change. NCCL on a dedicated GPU node: METHOD.md's 5% (not measured here: no GPU).
# gloo on a shared 2-core CPU machine: read off 18 real A/A runs of configs/ci.toml
# (benchmarks/gate_power.py; README, "Gate power"). Whole runs there drift by 7% (sd)
# together, so a single row needs 50% and a collective's geometric mean 20% to keep
# false alarms near 5% against a history of baseline runs.
ROW_TOLERANCE = {"nccl": 0.05, "gloo": 0.50}
AGGREGATE_TOLERANCE = {"nccl": 0.03, "gloo": 0.20}

# Worst first: the order of the report and of the exit-code precedence.
STATUSES = (
    "regression",
    "failed",
    "missing",
    "noise",
    "unstable",
    "new",
    "improvement",
    "unchanged",
)


def expand_history(paths: Iterable[Path]) -> list[Path]:
    """Run directories, where a directory of run directories stands for all of them."""
    runs: list[Path] = []
    for path in paths:
        if path.is_dir() and not (path / RESULTS_CSV).exists():
            children = sorted(p for p in path.iterdir() if (p / RESULTS_CSV).exists())
            if not children:
                raise UsageError(f"{path}: neither a run directory nor a directory of runs")
            runs += children
        else:
            runs.append(path)
    return runs


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
    def exit_code(self) -> int:
        counts = self.counts
        if self.mismatches and not self.allow_mismatch:
            return EXIT_NOT_COMPARABLE
        if counts["regression"] or counts["failed"] or len(self.aggregate_regressions):
            return EXIT_REGRESSION
        if counts["missing"] and not self.allow_missing:
            return EXIT_NOT_COMPARABLE
        return EXIT_PASS

    def verdict(self) -> str:
        counts = self.counts
        code = self.exit_code
        if code == EXIT_NOT_COMPARABLE and self.mismatches and not self.allow_mismatch:
            return "NOT COMPARABLE: " + ", ".join(self.mismatches) + " differ (--allow-mismatch)"
        parts = [f"{n} {status}" for status, n in counts.items() if n]
        if len(self.aggregate_regressions):
            parts.append(f"{len(self.aggregate_regressions)} aggregate regression(s)")
        word = {EXIT_PASS: "PASS", EXIT_REGRESSION: "REGRESSION"}.get(code, "NOT COMPARABLE")
        return f"{word}: " + ", ".join(parts)


def classify(ratio: float, significant: bool, tolerance: float, unstable: bool) -> str:
    """A row's status from its ratio, the test's verdict, and its noise.

    Beyond the tolerance but not significant is `noise`, or `unstable` when either
    side's samples scatter (cv >= 0.10): a row to look at, never a failure.
    """
    if ratio > 1 + tolerance and significant:
        return "regression"
    if ratio < 1 - tolerance and significant:
        return "improvement"
    if abs(ratio - 1) <= tolerance:
        return "unchanged"
    return "unstable" if unstable else "noise"  # beyond tolerance, not significant


def judge_rows(
    base: dict[tuple, Timings],
    current: dict[tuple, Timings],
    tolerance: float,
    rules: Rules,
    byte_sizes: dict[tuple, int],
) -> pd.DataFrame:
    records = []
    for key in sorted(set(base) | set(current), key=str):
        record = dict(zip(KEY_COLUMNS, key, strict=True))
        record["bytes"] = byte_sizes.get(key, 0)
        row_tolerance = rules.tolerance(record, tolerance)
        record.update(tolerance=row_tolerance, ratio=math.nan, p_value=math.nan, method="")
        record.update(baseline_us=math.nan, current_us=math.nan)
        before, now = base.get(key), current.get(key)
        if now is None or now.check == "skipped":  # not measured now: nothing to judge
            record["status"] = "missing"
        elif before is None:
            record["status"] = "new"
        elif now.check == "fail":
            record["status"] = "failed"
        elif before.check == "fail" or not len(before.samples) or not len(now.samples):
            record["status"] = "new"  # nothing timed to compare against
        else:
            record.update(
                baseline_us=float(np.median(before.samples)),
                current_us=float(np.median(now.samples)),
            )
            record["ratio"] = record["current_us"] / record["baseline_us"]
            record["status"] = "unchanged"
            if abs(record["ratio"] - 1) > row_tolerance:  # only then can significance matter
                test = shift_test(before.samples, now.samples, before.units, now.units)
                unstable = max(before.cv, now.cv) >= UNSTABLE_CV
                record.update(
                    p_value=test.p_value,
                    method=test.method,
                    status=classify(test.ratio, test.significant, row_tolerance, unstable),
                )
        records.append(record)
    return pd.DataFrame.from_records(records)


def judge_aggregates(rows: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per collective and variant: a shift shared by every row, beyond the tolerance."""
    compared = rows[rows["ratio"].notna()]
    records = []
    for (collective, variant), group in compared.groupby(["collective", "variant"]):
        center, low, high = geomean_interval(group["ratio"].to_numpy())
        if center > 1 + tolerance and low > 1:
            status = "regression"
        elif center < 1 - tolerance and high < 1:
            status = "improvement"
        else:
            status = "unchanged"
        records.append(
            dict(
                collective=collective,
                variant=variant,
                rows=len(group),
                geomean=center,
                low=low,
                high=high,
                tolerance=tolerance,
                status=status,
            )
        )
    columns = ["collective", "variant", "rows", "geomean", "low", "high", "tolerance", "status"]
    return pd.DataFrame.from_records(records, columns=columns)


def run_gate(
    baseline_paths: list[Path],
    current_path: Path,
    tolerance: float | None = None,
    aggregate_tolerance: float | None = None,
    rules: Rules | None = None,
    allow_missing: bool = False,
    allow_mismatch: bool = False,
) -> GateResult:
    baselines = [read_run(path) for path in expand_history(baseline_paths)]
    current = read_run(current_path)
    mismatches: dict[str, tuple] = {}
    for baseline in baselines:
        mismatches.update(identity_diff(baseline.meta, current.meta))
    backend = current.meta.get("backend", "nccl")
    row_tolerance = ROW_TOLERANCE.get(backend, 0.05) if tolerance is None else tolerance
    if aggregate_tolerance is None:
        aggregate_tolerance = AGGREGATE_TOLERANCE.get(backend, 0.03)
    every_row = pd.concat([run.results for run in [*baselines, current]], ignore_index=True)
    byte_sizes = every_row.drop_duplicates(KEY_COLUMNS).set_index(KEY_COLUMNS)["bytes"].to_dict()
    rows = judge_rows(
        timings_by_key(baselines),
        timings_by_key([current]),
        row_tolerance,
        rules or Rules(),
        byte_sizes,
    )
    return GateResult(
        rows=rows,
        aggregates=judge_aggregates(rows, aggregate_tolerance),
        mismatches=mismatches,
        allow_missing=allow_missing,
        allow_mismatch=allow_mismatch,
        baselines=[str(b.path) for b in baselines],
        current=str(current.path),
    )
