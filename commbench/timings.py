"""Per-row samples across one or more runs: what the gate and compare test."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from commbench.results import KEY_COLUMNS, Run


@dataclass(frozen=True)
class Timings:
    """One row key's raw samples in one or more runs, and its per-round medians."""

    samples: np.ndarray
    units: np.ndarray  # median of each (run, round)
    cv: float  # the largest cv any of the runs reported for the row
    check: str


def _split_by_key(frame: pd.DataFrame, column: str) -> tuple[list[tuple], list[np.ndarray]]:
    """The keys in sorted order and `column`'s values for each (numpy, not a groupby loop:
    iterating a pandas groupby costs about a millisecond a group)."""
    frame = frame.sort_values(KEY_COLUMNS, kind="stable")
    codes = frame.groupby(KEY_COLUMNS, sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.diff(codes)) + 1
    keys = frame[KEY_COLUMNS].drop_duplicates().itertuples(index=False, name=None)
    return list(keys), np.split(frame[column].to_numpy(), starts)


def timings_by_key(runs: list[Run]) -> dict[tuple, Timings]:
    """Every row key's samples pooled over `runs`, with per-(run, round) medians."""
    frames = []
    for number, run in enumerate(runs):
        samples = run.samples.assign(run=number)
        if "round" not in samples:
            samples = samples.assign(round=0)
        frames.append(samples)
    samples = pd.concat(frames, ignore_index=True)
    results = pd.concat([run.results for run in runs], ignore_index=True)
    by_key = results.groupby(KEY_COLUMNS)
    cvs = by_key["cv"].max().to_dict()
    failed = results.assign(failed=results["check"].eq("fail")).groupby(KEY_COLUMNS)["failed"]
    checks = by_key["check"].first().where(~failed.any(), "fail").to_dict()
    units = samples.groupby([*KEY_COLUMNS, "run", "round"])["time_us"].median().reset_index()
    out = {}
    for key, times, unit_times in zip(
        *_split_by_key(samples, "time_us"), _split_by_key(units, "time_us")[1], strict=True
    ):
        out[key] = Timings(
            samples=times,
            units=unit_times,
            cv=float(cvs.get(key, math.nan)),
            check=str(checks.get(key, "pass")),
        )
    for key, check in checks.items():  # failed points have a row but no samples
        out.setdefault(key, Timings(np.empty(0), np.empty(0), math.nan, check))
    return out
