"""A history's series as levels: each run's log median of every row, centred on the row's
mean over the runs, averaged over an aggregate's rows (overall, or one collective/variant).
The trend test, `history list` and the history page read the same levels."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from commbench.analysis.gate.history import Entry, read_ledger, read_series, since_pin, when
from commbench.analysis.gate.trend import TREND_LEVEL, step_records
from commbench.rundir.schema import KEY_COLUMNS

OVERALL = ("all", "all")


def aggregates(keys: list[tuple]) -> list[tuple[tuple, list[int]]]:
    """(("all", "all"), every column), then each collective/variant's columns where there
    are several: what the gate's overall and collective tests judge."""
    groups: dict[tuple, list[int]] = {}
    for column, key in enumerate(keys):
        groups.setdefault(key[:2], []).append(column)
    every = [(OVERALL, list(range(len(keys))))]
    return every + (list(groups.items()) if len(groups) > 1 else [])


def series_times(medians: pd.DataFrame, entries: list[Entry]) -> dict[str, dict[tuple, float]]:
    """series.csv's medians of `entries`, by run id and row key."""
    wanted = {entry.id for entry in entries}
    found: dict[str, dict[tuple, float]] = {run: {} for run in wanted}
    keys = medians[KEY_COLUMNS].itertuples(index=False, name=None)
    for run, key, time_us in zip(medians["id"], keys, medians["time_us"], strict=True):
        if run in wanted:
            found[run][key] = float(time_us)
    return found


def log_times(
    times: dict[str, dict[tuple, float]], entries: list[Entry], keys: list[tuple]
) -> np.ndarray:
    """runs x keys of log median times (NaN where a run did not time the row)."""
    table = [[times[e.id].get(key, np.nan) for key in keys] for e in entries]
    return np.log(np.array(table, dtype=float).reshape(len(entries), len(keys)))


def levels(logs: np.ndarray, columns: list[int]) -> np.ndarray:
    """Each run's level over `columns`: the mean of its rows' logs less each row's mean
    over the runs (NaN for a run that timed none of them)."""
    chosen = logs[:, columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(chosen - np.nanmean(chosen, axis=0), axis=1)


@dataclass(frozen=True)
class Series:
    """Every run a history holds or held, oldest first, with each row's log median."""

    entries: list[Entry]
    keys: list[tuple]
    logs: np.ndarray  # entries x keys
    pinned: list[str]  # ids of the pinned runs
    since: int  # index of the first run the trend test reads (the pin's)


def read_history_series(history_path: Path) -> Series:
    """The whole series of a history, the quarantined runs included (the page shows
    them), with where the trend test's part starts."""
    ledger = read_ledger(history_path)
    entries = sorted(ledger.runs, key=lambda e: when(e.started))
    medians = read_series(history_path)
    keys = sorted(set(medians[KEY_COLUMNS].itertuples(index=False, name=None)), key=str)
    times = series_times(medians, entries)
    trend = since_pin(history_path, ledger)
    since = entries.index(trend[0]) if trend else len(entries)
    pinned = ledger.pin.runs if ledger.pin else []
    return Series(entries, keys, log_times(times, entries, keys), pinned, since)


def trend_steps(series: Series) -> list[dict]:
    """The steps the trend test finds in the runs since the pin, per aggregate, as the
    gate would test them (before any current run)."""
    part = [
        i
        for i in range(series.since, len(series.entries))
        if series.entries[i].state != "quarantined"
    ]
    if not part:
        return []
    logs = series.logs[part]
    names = [series.entries[i].name for i in part]
    groups = aggregates(series.keys)
    steps: list[dict] = []
    for group, columns in groups:
        level = levels(logs, columns)
        if not np.isnan(level).any():
            steps += step_records(level, names, group, TREND_LEVEL / len(groups))[1]
    return steps
