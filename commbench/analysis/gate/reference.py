"""What a history adds to the window's tests: the cumulative shift against the pinned
reference, and steps in the whole series since the pin (docs/gate.md, "Two references
and a trend").

- pin: each aggregate's (overall, each collective/variant) geometric mean of current /
  pinned, judged on the window's between-run spread (today's noise) with the pinned runs
  as the baseline side. It regresses only where the shift is beyond the asked shift
  (`--detect`) and beyond its interval: the pin is old, and the level may wander within
  what the gate is asked to see, but a creep that has added up to it is a regression
  however small each step was.
- trend: the same aggregates' level in every run since the pin and in the current runs,
  tested for steps; the latest level regresses against the best before it when the step
  is beyond the aggregate tolerance and its interval (trend.py).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from commbench.analysis.gate.history import (
    Entry,
    Pin,
    pinned_runs,
    read_ledger,
    read_series,
    since_pin,
)
from commbench.analysis.gate.medians import RunMedians, run_medians
from commbench.analysis.gate.model import Judged, Layout
from commbench.analysis.gate.priors import Prior
from commbench.analysis.gate.series import aggregates, log_times, series_times
from commbench.analysis.gate.series import levels as series_levels
from commbench.analysis.gate.trend import TREND_LEVEL, latest_vs_best, step_records
from commbench.analysis.stats import one_sided
from commbench.rundir.reader import Run

PIN_LEVEL = 0.01  # one-sided, over the pin's aggregates together (Bonferroni)


@dataclass(frozen=True)
class Reference:
    """A history's pin and series, beside its window."""

    pinned: RunMedians | None  # the pinned runs' medians (None: no pin)
    pin: Pin | None
    series: list[Entry] = field(default_factory=list)  # every run since the pin, oldest first
    times: dict[str, dict[tuple, float]] = field(default_factory=dict)  # id -> key -> median


@dataclass(frozen=True)
class HistoryReference:
    """What a history directory holds beyond its window, read once for the gate."""

    pinned_runs: list[Run]
    judged: Reference
    notes: list[str]  # the pin (who, when, why) or its absence, and the quarantined


def read_reference(history: Path) -> HistoryReference:
    ledger = read_ledger(history)
    pinned = pinned_runs(history)
    entries = since_pin(history, ledger)
    times = series_times(read_series(history), entries)
    notes = []
    if ledger.pin is None:
        notes.append(
            "this history has no pinned reference: a creep that adds up a little at a time"
            " is seen only by the trend test (commbench history pin)"
        )
    else:
        pin = ledger.pin
        notes.append(
            f"pinned reference: {len(pin.runs)} run(s) pinned by {pin.by} at {pin.at}: {pin.reason}"
        )
    quarantined = sum(entry.state == "quarantined" for entry in ledger.runs)
    if quarantined:
        notes.append(
            f"{quarantined} quarantined run(s) (alarms a rerun did not confirm) are kept"
            " apart and not judged against"
        )
    medians = run_medians(pinned) if pinned else None
    return HistoryReference(pinned, Reference(medians, ledger.pin, entries, times), notes)


@dataclass(frozen=True)
class Judgement:
    """The pin's and the trend's aggregate rows, and the steps found (for the reports)."""

    aggregates: list[dict[str, Any]]
    steps: list[dict[str, Any]]


def judge_pin(
    reference: Reference,
    window: RunMedians,
    current: RunMedians,
    keys: list[tuple],
    prior: Prior | None,
    detect: float,
    record: Any,
) -> list[dict[str, Any]]:
    """The pin's aggregates: `record(test, group, rows, log_shift, contrast, judged,
    tolerance)` makes each row of the aggregates table."""
    pinned = reference.pinned
    if pinned is None:
        return []
    keys = [k for k in keys if k in pinned.index and not np.isnan(pinned.of(k)).all()]
    if not keys:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        shifts = np.nanmean(np.log(current.times[[current.index[k] for k in keys]]), axis=1)
        shifts -= np.nanmean(np.log(pinned.times[[pinned.index[k] for k in keys]]), axis=1)
    layout = Layout(window.logs(keys), shifts, {}, prior, pinned.runs, current.runs)
    groups = aggregates(keys)
    confidence = one_sided(PIN_LEVEL, len(groups))
    found = []
    for group, columns in groups:
        mean, judged = layout.level(columns, detect - 1, confidence)
        found.append(record("pin", group, len(columns), mean, math.nan, judged, detect - 1))
    return found


def judge_trend(
    reference: Reference,
    current: RunMedians,
    keys: list[tuple],
    tolerance: float,
    record: Any,
) -> Judgement:
    """The trend's aggregates (a regression where the latest level is slower than the
    best since the pin) and every step found, in each aggregate's series."""
    if not reference.series or not keys:
        return Judgement([], [])
    groups = aggregates(keys)
    level = TREND_LEVEL / len(groups)
    names = [e.name for e in reference.series] + [
        f"current run {i + 1}" for i in range(current.runs)
    ]
    past = log_times(reference.times, reference.series, keys)
    now = np.log(current.times[[current.index[k] for k in keys]].T)
    logs = np.vstack([past, now])
    judged_rows, steps = [], []
    for group, columns in groups:
        levels = series_levels(logs, columns)
        if np.isnan(levels).any():
            continue
        found, said = step_records(levels, names, group, level)
        steps += said
        latest = latest_vs_best(levels, found, level, current.runs)
        if latest is None:
            continue
        judged = Judged(
            low=latest.low,
            high=latest.high,
            p_value=math.nan,
            detectable=math.nan,
            slower=latest.slower,
            faster=latest.high < 1,
            spread=latest.spread,
            needed=math.nan,
        )
        log_ratio = math.log(latest.ratio)
        row = record("trend", group, len(columns), log_ratio, math.nan, judged, tolerance)
        row["since"] = names[latest.best[0]]
        judged_rows.append(row)
    return Judgement(judged_rows, steps)
