"""The CI regression gate: judge a current run, or several reruns of the same code
together, against one baseline run or a history.

Pure functions of result directories (pandas, numpy, scipy): never imports torch. The
tests and their spreads are model.py's; this module finds the rows to compare, gives
every row and aggregate its figures and status, and says what the history lacks. The
exit code is the contract (verdict.py): 0 pass, 1 regression, 2 bad input, 3 not
comparable, 4 insufficient.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from commbench.analysis.gate.history import history_notes, is_history, run_id
from commbench.analysis.gate.medians import RunMedians, run_medians
from commbench.analysis.gate.model import Judged, Layout
from commbench.analysis.gate.priors import Prior, PriorTable, prior_for_runs
from commbench.analysis.gate.reference import (
    HistoryReference,
    judge_pin,
    judge_trend,
    read_reference,
)
from commbench.analysis.gate.rules import Rules
from commbench.analysis.gate.verdict import AGGREGATE_COLUMNS, WINDOW_TESTS, GateResult, status
from commbench.analysis.stats import UNSTABLE_CV, geomean
from commbench.errors import UsageError
from commbench.point import row_label
from commbench.rundir.identity import identity_diff
from commbench.rundir.reader import Run, read_run
from commbench.rundir.schema import KEY_COLUMNS, RESULTS_CSV

# Default tolerances per backend: how far a median may move before it counts as a change
# at all. Whether a move is more than the noise is the between-run spread's job
# (priors.toml and a history), not the tolerance's. NCCL on a dedicated GPU node: 5% and
# 3% (chosen, not yet measured on a GPU). gloo, measured on a shared 2-core x86_64 VM:
# 50% for a row, below what its between-run spread lets a row's test see anyway, and 50%
# for an aggregate: that VM's whole level moves 1.4 to 1.8 times for tens of minutes at a
# stretch, which neither a window nor a rerun made in the stretch can tell from a
# regression: at 10%, with both runs of an alarm gated together, 5.8% of the A/A runs of
# replayed histories raised a confirmed alarm; at 50%, the rerun judged alone, 0.6%
# (docs/gate.md, "A history that cannot be boiled, measured"). The price: a
# collective 1.25x slower, which a history of five and three current runs saw about half
# the time at 10%, is below it. The asked shift on gloo is 2x.
ROW_TOLERANCE = {"nccl": 0.05, "gloo": 0.50}
AGGREGATE_TOLERANCE = {"nccl": 0.03, "gloo": 0.50}
# The shift the gate must be able to see (`--detect`), per backend (docs/gate.md,
# "The asked shift (`--detect`)"): an NCCL regression worth a CI failure is about 10% at
# every size; gloo on a shared 2-core x86_64 VM drifts by 10-25% between runs, where one
# baseline sees 2.34x overall (the 4-rank prior alone) and a history of five about 1.5x
# (median; 1.45x to 3.0x, configs/ci.toml on 4 ranks, docs/gate.md "Measured power").
DETECT = {"nccl": 1.10, "gloo": 2.00}


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


def row_status(key: tuple, base: RunMedians, current: RunMedians) -> str | None:
    """The status of a row that is not compared, or None for one that is. A row that
    failed its check in some baseline runs is compared on the runs where it passed; one
    that any current run failed, skipped or lacks is not compared (the current runs are
    reruns of one sweep: each holds every row)."""
    now = current.check.get(key)
    timed = key in base.check and not np.isnan(base.of(key)).all()
    if now == "fail":
        return "failed"
    if now == "skipped":
        return "lost" if timed else "skipped"  # measured before, not now: a hole
    if current.listed.get(key, 0) < current.runs:
        return "missing"  # not in a current run at all
    if not timed or np.isnan(current.of(key)).all():
        return "new"  # nothing timed to compare against
    return None


def _timed(medians: RunMedians, key: tuple) -> np.ndarray:
    """The key's medians in the runs that timed it."""
    values = medians.of(key)
    return values[~np.isnan(values)]


def _record(key: tuple, rules: Rules, byte_sizes: dict, tolerance: float) -> dict[str, Any]:
    record: dict[str, Any] = dict(zip(KEY_COLUMNS, key, strict=True))
    record["bytes"] = byte_sizes.get(key, 0)
    record["tolerance"] = rules.tolerance(record, tolerance)
    record.update(ratio=math.nan, contrast=math.nan, low=math.nan, high=math.nan)
    record.update(p_value=math.nan, detectable=math.nan, method="", baselines=0, currents=0)
    record.update(baseline_us=math.nan, current_us=math.nan)
    return record


def _judged_cells(judged: Judged) -> dict[str, Any]:
    return dict(low=judged.low, high=judged.high, detectable=judged.detectable)


@dataclass(frozen=True)
class _Asked:
    """What every aggregate of one gate run is judged by."""

    tolerance: float
    detect: float
    runs: tuple[int, int]  # baseline and current runs

    def record(
        self,
        test: str,
        group: tuple,
        rows: int,
        log_shift: float,
        contrast: float,
        judged: Judged,
        tolerance: float | None = None,
    ) -> dict[str, Any]:
        """An aggregate's row of the table (AGGREGATE_COLUMNS). The tolerance applies to
        what its test judges: a collective's contrast against the run, else its own
        ratio. A regression it saw is one, whatever its power; otherwise a window test
        (overall, collective) that cannot see the asked shift is `insufficient`; the pin
        and the trend only add regressions."""
        ratio = math.exp(log_shift)
        spread = judged.spread
        tolerance = self.tolerance if tolerance is None else tolerance
        judged_ratio = contrast if test == "collective" else ratio
        detect = self.detect if test in WINDOW_TESTS else math.inf
        return dict(
            test=test,
            collective=group[0],
            variant=group[1],
            rows=rows,
            geomean=ratio,
            contrast=contrast,
            **_judged_cells(judged),
            tolerance=tolerance,
            detect=self.detect,
            needed=judged.needed,
            baselines=self.runs[0],
            currents=self.runs[1],
            spread_sd=spread.sd if spread else math.nan,
            spread_df=spread.df if spread else math.nan,
            spread=judged.source,
            status=status(judged_ratio, judged, tolerance, detect),
            since="",
        )


NOTHING_JUDGED = Judged(*(math.nan,) * 4, False, False, None, math.nan)
OVERALL = ("all", "all")


@dataclass(frozen=True)
class Window:
    """The window's judgement: every row, the overall and collective tests, and the rows
    compared (what the pin and the trend judge too)."""

    rows: pd.DataFrame
    aggregates: list[dict[str, Any]]
    compared: list[tuple]


def judge_runs(
    base: RunMedians,
    current: RunMedians,
    asked: _Asked,
    row_tolerance: float,
    rules: Rules,
    byte_sizes: dict[tuple, int],
    layout_prior: Prior | None,
) -> Window:
    """Rows and aggregates: every row's status, the overall and per-collective tests. A
    row's current time is the geometric mean over the current runs that timed it."""
    aggregate_tolerance, detect = asked.tolerance, asked.detect
    keys = sorted(set(base.check) | set(current.check), key=str)
    records = {key: _record(key, rules, byte_sizes, row_tolerance) for key in keys}
    rules.check_used(list(records.values()))
    compared = []
    for key, record in records.items():
        record["status"] = row_status(key, base, current)
        if record["status"] is None:
            before, now = _timed(base, key), _timed(current, key)
            record.update(baseline_us=geomean(before), current_us=geomean(now))
            record.update(baselines=len(before), currents=len(now))
            record["ratio"] = record["current_us"] / record["baseline_us"]
            compared.append(key)
    if not compared:  # rows timed now, none timed before: nothing could be seen
        new = any(r["status"] == "new" for r in records.values())
        unseen = [asked.record("overall", OVERALL, 0, math.nan, math.nan, NOTHING_JUDGED)]
        rows = pd.DataFrame.from_records(list(records.values()))
        return Window(rows, unseen if new else [], [])
    groups: dict[tuple, list[int]] = {}
    for column, key in enumerate(compared):
        groups.setdefault(key[:2], []).append(column)  # (collective, variant)
    shifts = np.log([records[key]["ratio"] for key in compared])
    layout = Layout(base.logs(compared), shifts, groups, layout_prior, base.runs, current.runs)
    mean, overall = layout.overall(aggregate_tolerance, detect)
    aggregates = [asked.record("overall", OVERALL, layout.rows, mean, math.nan, overall)]
    if len(groups) > 1:
        for group, columns in groups.items():
            judged = layout.collective(columns, aggregate_tolerance, detect)
            own = float(shifts[columns].mean())
            contrast = math.exp(own - mean)
            aggregates.append(
                asked.record("collective", group, len(columns), own, contrast, judged)
            )
    for column, key in enumerate(compared):
        record = records[key]
        unstable = max(base.cv[key], current.cv[key]) >= UNSTABLE_CV
        if layout.rows == 1:  # one row: its contrast is nothing, the overall test is its
            judged = overall
        else:
            judged = layout.row(
                column, record["baselines"], record["currents"], record["tolerance"]
            )
        record["contrast"] = math.exp(shifts[column] - mean)
        record.update(_judged_cells(judged), p_value=judged.p_value, method=judged.source)
        # the tolerance applies to what the test judges: the row against its run
        judged_ratio = record["ratio"] if layout.rows == 1 else record["contrast"]
        record["status"] = status(judged_ratio, judged, record["tolerance"], unstable=unstable)
    return Window(pd.DataFrame.from_records(list(records.values())), aggregates, compared)


def k_changes(base: RunMedians, current: RunMedians) -> list[str]:
    """Rows whose operations per sample (K) in a current run is none the baseline runs
    took: the same median then times a different loop (a sweep picks K per run to fill
    its minimum sample time, so K moving among the history's own values is usual)."""
    changed = []
    for key, now in current.iters.items():
        before = base.iters.get(key)
        new = [k for k in now if k not in before] if before else []
        if new:
            label = row_label(dict(zip(KEY_COLUMNS, key, strict=True)))
            changed.append(f"{label}: K {_ks(before)} -> {_ks(new)}")
    return changed


def _ks(values: Iterable[int]) -> str:
    return "/".join(map(str, values))


def run_gate(
    baseline_paths: list[Path], current: Path | Sequence[Path], **options: Any
) -> GateResult:
    """`commbench gate`'s judgement of run directories (a directory of runs: a history)
    against the current run, or several current runs judged together; `options` as
    `gate_runs` takes them."""
    baselines = [read_run(path) for path in expand_history(baseline_paths)]
    currents = [read_run(path) for path in ([current] if isinstance(current, Path) else current)]
    history = baseline_paths[0] if len(baseline_paths) == 1 else None
    reference = read_reference(history) if history is not None and is_history(history) else None
    pinned = reference.pinned_runs if reference else []
    refuse_judging_itself([*baselines, *pinned], currents)
    return gate_runs(baselines, currents, reference=reference, **options)


def gate_runs(
    baselines: list[Run],
    current: Run | Sequence[Run],
    tolerance: float | None = None,
    aggregate_tolerance: float | None = None,
    rules: Rules | None = None,
    detect: float | None = None,
    allow_missing: bool = False,
    allow_mismatch: bool = False,
    allow_lost: bool = False,
    allow_insufficient: bool = False,
    prior: Prior | str | None = "measured",
    priors: PriorTable | None = None,
    reference: HistoryReference | None = None,
) -> GateResult:
    """The judgement of runs already read (benchmarks/gate_power.py judges many).
    `current`: one run, or several runs of the same code (reruns) judged together: each
    row's geometric mean over them. `detect`: the shift that must be seen; the command
    line's, else the rules file's, else the backend's default. `prior`: the backend's
    measured one, or one given (the benchmark judges runs with a prior fitted on other
    runs: out of sample); `priors`: the table "measured" chooses from (default: the
    shipped priors); `reference`: a history's pin and series, judged too."""
    currents = [current] if isinstance(current, Run) else list(current)
    mismatches = identity_mismatches(baselines, currents)
    backend = currents[0].meta.backend
    rules = rules or Rules()
    row_tolerance = ROW_TOLERANCE.get(backend, 0.05) if tolerance is None else tolerance
    if aggregate_tolerance is None:
        aggregate_tolerance = AGGREGATE_TOLERANCE.get(backend, 0.03)
    wanted = detect or rules.detect or DETECT.get(backend, DETECT["nccl"])
    every_row = pd.concat([run.results for run in [*baselines, *currents]], ignore_index=True)
    byte_sizes = every_row.drop_duplicates(KEY_COLUMNS).set_index(KEY_COLUMNS)["bytes"].to_dict()
    base, now = run_medians(baselines), run_medians(currents)
    if prior == "measured":
        prior = prior_for_runs((run.meta for run in [*currents, *baselines]), priors)
    asked = _Asked(aggregate_tolerance, wanted, (base.runs, now.runs))
    window = judge_runs(base, now, asked, row_tolerance, rules, byte_sizes, prior)
    aggregates, steps, notes = list(window.aggregates), [], history_notes(baselines, currents)
    if reference is not None:
        pinned = reference.judged.pinned
        if pinned is not None:
            pin_asked = _Asked(aggregate_tolerance, wanted, (pinned.runs, now.runs))
            aggregates += judge_pin(
                reference.judged, base, now, window.compared, prior, wanted, pin_asked.record
            )
        trend = judge_trend(
            reference.judged, now, window.compared, aggregate_tolerance, asked.record
        )
        aggregates += trend.aggregates
        steps = trend.steps
        notes += reference.notes
    return GateResult(
        rows=window.rows,
        aggregates=pd.DataFrame.from_records(aggregates, columns=AGGREGATE_COLUMNS),
        steps=steps,
        pin=reference.judged.pin.model_dump() if reference and reference.judged.pin else None,
        mismatches=mismatches,
        allow_missing=allow_missing,
        allow_mismatch=allow_mismatch,
        allow_lost=allow_lost,
        allow_insufficient=allow_insufficient,
        detect=wanted,
        k_changes=k_changes(base, now),
        notes=notes,
        baselines=[str(b.path) for b in baselines],
        currents=[str(c.path) for c in currents],
    )


def refuse_judging_itself(baselines: list[Run], currents: list[Run]) -> None:
    """A current run among the baseline runs (a history that holds it, or the same run
    given twice, under any name) would be judged against itself: refused, exit 2."""
    seen: dict[str, Run] = {}
    for run in baselines:
        seen.setdefault(run_id(run), run)
    for run in currents:
        same = seen.get(run_id(run))
        if same is not None:
            raise UsageError(
                f"runs: the current run {str(run.path)!r} is also a baseline run"
                f" ({str(same.path)!r}): a run judged against itself hides every change"
            )
        seen[run_id(run)] = run


def identity_mismatches(baselines: list[Run], currents: list[Run]) -> dict[str, tuple]:
    """Identity fields that differ between a baseline run and a current run: name ->
    (baseline value, current value). Every pair is compared, so current runs that differ
    among themselves show too: no baseline can match both."""
    mismatches: dict[str, tuple] = {}
    for baseline in baselines:
        for current in currents:
            mismatches.update(identity_diff(baseline.meta, current.meta))
    return mismatches
