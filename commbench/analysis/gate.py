"""The CI regression gate: judge a current run against one baseline run or a history.

Pure functions of result directories (pandas, numpy, scipy): never imports torch.
The exit code is the contract: 0 pass, 1 regression, 2 bad input, 3 not comparable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from commbench.analysis.gate_verdict import GateResult
from commbench.analysis.medians import RunMedians, run_medians
from commbench.analysis.priors import Prior, prior_for_runs
from commbench.analysis.rules import Rules
from commbench.analysis.stats import (
    UNSTABLE_CV,
    Spread,
    family_confidence,
    history_spread,
    judge_shift,
    pool,
)
from commbench.errors import UsageError
from commbench.rundir.identity import identity_diff
from commbench.rundir.reader import Run, read_run
from commbench.rundir.schema import KEY_COLUMNS, RESULTS_CSV

# Default tolerances per backend: how far a median may move before it counts as a change
# at all. Whether a move is more than the noise is the between-run spread's job
# (priors.py and a history), not the tolerance's. NCCL on a dedicated GPU node:
# docs/method.md's 5% and 3% (not measured: no GPU yet). gloo on a shared 2-core CPU machine:
# 50% and 20%, below what its between-run spread lets the gate see anyway (docs/benchmarks.md,
# "Gate power"), so they never hide a shift the statistics could show.
ROW_TOLERANCE = {"nccl": 0.05, "gloo": 0.50}
AGGREGATE_TOLERANCE = {"nccl": 0.03, "gloo": 0.20}


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


def _source(spread: Spread | None) -> str:
    return spread.source if spread is not None else ""


def judge_rows(
    base: RunMedians,
    current: RunMedians,
    tolerance: float,
    rules: Rules,
    byte_sizes: dict[tuple, int],
    prior: Prior | None,
) -> pd.DataFrame:
    """One record per row key. A compared row's baseline is the geometric mean of its
    median over the baseline runs; its interval comes from the between-run spread of
    its collective/variant's rows (the prior pooled with the history), at a confidence
    that holds for all the compared rows together."""
    records: dict[tuple, dict] = {}
    groups: dict[tuple, list[tuple]] = {}  # (collective, variant) -> compared keys
    for key in sorted(set(base.check) | set(current.check), key=str):
        record = dict(zip(KEY_COLUMNS, key, strict=True))
        record["bytes"] = byte_sizes.get(key, 0)
        record["tolerance"] = rules.tolerance(record, tolerance)
        record.update(ratio=math.nan, low=math.nan, high=math.nan, p_value=math.nan)
        record.update(detectable=math.nan, method="", baselines=0)
        record.update(baseline_us=math.nan, current_us=math.nan)
        records[key] = record
        now = current.check.get(key)
        before = base.of(key) if key in base.check else np.empty(0)
        now_us = current.of(key)[0] if now is not None else math.nan
        if now is None or now == "skipped":  # not measured now: nothing to judge
            record["status"] = "missing"
        elif key not in base.check:
            record["status"] = "new"
        elif now == "fail":
            record["status"] = "failed"
        elif base.check[key] == "fail" or np.isnan(before).all() or math.isnan(now_us):
            record["status"] = "new"  # nothing timed to compare against
        else:
            timed = before[~np.isnan(before)]
            baseline_us = float(np.exp(np.log(timed).mean()))
            record.update(baseline_us=baseline_us, current_us=now_us)
            record.update(ratio=now_us / baseline_us, baselines=len(timed))
            groups.setdefault((record["collective"], record["variant"]), []).append(key)
    confidence = family_confidence(sum(len(keys) for keys in groups.values()))
    for keys in groups.values():
        spread = pool(prior.row() if prior else None, history_spread(base.logs(keys)))
        for key in keys:
            record = records[key]
            if spread is None:
                record["status"] = "insufficient"
                continue
            shift = judge_shift(
                math.log(record["ratio"]),
                spread,
                record["baselines"],
                record["tolerance"],
                confidence,
            )
            unstable = max(base.cv[key], current.cv[key]) >= UNSTABLE_CV
            record.update(low=shift.low, high=shift.high, p_value=shift.p_value)
            record.update(detectable=shift.detectable, method=spread.source)
            significant, row_tolerance = shift.significant, record["tolerance"]
            record["status"] = classify(shift.ratio, significant, row_tolerance, unstable)
    return pd.DataFrame.from_records(list(records.values()))


AGGREGATE_COLUMNS = [
    "collective",
    "variant",
    "rows",
    "geomean",
    "low",
    "high",
    "tolerance",
    "detectable",
    "baselines",
    "spread_sd",
    "spread_df",
    "spread",
    "status",
]


def judge_aggregates(
    rows: pd.DataFrame, base: RunMedians, tolerance: float, prior: Prior | None
) -> pd.DataFrame:
    """Per collective and variant: a shift shared by every row (the mean of the rows'
    log ratios), against the spread of that same mean between runs. That spread is
    what the rows share, so it comes from whole runs: each baseline run's mean log
    deviation over the same rows (the history), pooled with the backend's prior for
    this many rows. Never from the scatter of the rows of one pair of runs. The
    intervals hold together for all the collectives/variants at once."""
    compared = rows[rows["ratio"].notna()]
    groups = compared.groupby(["collective", "variant"])
    confidence = family_confidence(len(groups))
    records = []
    for (collective, variant), group in groups:
        keys = list(group[KEY_COLUMNS].itertuples(index=False, name=None))
        logs = base.logs(keys)
        per_run = np.nanmean(logs - np.nanmean(logs, axis=0), axis=1)  # each run's drift
        spread = pool(
            prior.aggregate(len(group)) if prior else None,
            history_spread(per_run[~np.isnan(per_run)]),
        )
        log_shift = float(np.log(group["ratio"].to_numpy()).mean())
        record = dict(
            collective=collective,
            variant=variant,
            rows=len(group),
            geomean=math.exp(log_shift),
            low=math.nan,
            high=math.nan,
            tolerance=tolerance,
            detectable=math.nan,
            baselines=base.runs,
            spread_sd=spread.sd if spread else math.nan,
            spread_df=spread.df if spread else math.nan,
            spread=_source(spread),
            status="insufficient",
        )
        if spread is not None:
            shift = judge_shift(log_shift, spread, base.runs, tolerance, confidence)
            record.update(low=shift.low, high=shift.high, detectable=shift.detectable)
            if shift.ratio > 1 + tolerance and shift.low > 1:
                record["status"] = "regression"
            elif shift.ratio < 1 - tolerance and shift.high < 1:
                record["status"] = "improvement"
            else:
                record["status"] = "unchanged"
        records.append(record)
    return pd.DataFrame.from_records(records, columns=AGGREGATE_COLUMNS)


def run_gate(baseline_paths: list[Path], current_path: Path, **options: Any) -> GateResult:
    """`commbench gate`'s judgement of run directories (a directory of runs: a history);
    `options` as `gate_runs` takes them."""
    baselines = [read_run(path) for path in expand_history(baseline_paths)]
    return gate_runs(baselines, read_run(current_path), **options)


def gate_runs(
    baselines: list[Run],
    current: Run,
    tolerance: float | None = None,
    aggregate_tolerance: float | None = None,
    rules: Rules | None = None,
    allow_missing: bool = False,
    allow_mismatch: bool = False,
) -> GateResult:
    """The judgement of runs already read (benchmarks/gate_power.py judges many)."""
    mismatches: dict[str, tuple] = {}
    for baseline in baselines:
        mismatches.update(identity_diff(baseline.meta, current.meta))
    backend = current.meta.backend
    row_tolerance = ROW_TOLERANCE.get(backend, 0.05) if tolerance is None else tolerance
    if aggregate_tolerance is None:
        aggregate_tolerance = AGGREGATE_TOLERANCE.get(backend, 0.03)
    every_row = pd.concat([run.results for run in [*baselines, current]], ignore_index=True)
    byte_sizes = every_row.drop_duplicates(KEY_COLUMNS).set_index(KEY_COLUMNS)["bytes"].to_dict()
    base = run_medians(baselines)
    prior = prior_for_runs([current.meta, *(baseline.meta for baseline in baselines)])
    rows = judge_rows(
        base, run_medians([current]), row_tolerance, rules or Rules(), byte_sizes, prior
    )
    return GateResult(
        rows=rows,
        aggregates=judge_aggregates(rows, base, aggregate_tolerance, prior),
        mismatches=mismatches,
        allow_missing=allow_missing,
        allow_mismatch=allow_mismatch,
        baselines=[str(b.path) for b in baselines],
        current=str(current.path),
    )
