"""Each row's median time in each of one or more runs: the unit the gate and compare judge.

A run, not a sample: samples taken back to back inside one run share its drift, and
the variance that matters is between runs (docs/method.md, "Noise between runs").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from commbench.rundir.reader import Run
from commbench.rundir.schema import KEY_COLUMNS


@dataclass(frozen=True)
class RunMedians:
    """Median times (us) per row key and run, NaN where a run has no timed, passing row."""

    times: np.ndarray  # keys x runs
    index: dict[tuple, int]  # key -> its row in `times`
    check: dict[tuple, str]  # the worst of the runs' checks: "fail", "skipped", else "pass"
    listed: dict[tuple, int]  # how many runs hold the row at all
    cv: dict[tuple, float]  # the largest cv any run reported for the row
    iters: dict[tuple, tuple[int, ...]]  # K, the operations per sample, of each timed run

    @property
    def runs(self) -> int:
        return self.times.shape[1]

    def of(self, key: tuple) -> np.ndarray:
        """The key's median in each run."""
        return self.times[self.index[key]]

    def logs(self, keys: list[tuple]) -> np.ndarray:
        """runs x keys matrix of log median times."""
        return np.log(self.times[[self.index[key] for key in keys]].T)


def run_medians(runs: list[Run]) -> RunMedians:
    """Plain loops over results.csv rows: a run has one row per key, and pandas indexing
    per key costs milliseconds (benchmarks/gate_speed.py judges 1,000 rows)."""
    index: dict[tuple, int] = {}
    check: dict[tuple, str] = {}
    listed: dict[tuple, int] = {}
    cv: dict[tuple, float] = {}
    iters: dict[tuple, set[int]] = {}
    timed: list[dict[tuple, float]] = []
    for run in runs:
        frame = run.results
        keys = frame[KEY_COLUMNS].itertuples(index=False, name=None)
        names = ("check", "time_us", "samples", "cv", "iters")
        columns = (frame[c].to_numpy() for c in names)
        medians = {}
        for key, status, time_us, samples, row_cv, k in zip(keys, *columns, strict=True):
            index.setdefault(key, len(index))
            if status == "pass" and samples > 0:
                medians[key] = float(time_us)
                iters.setdefault(key, set()).add(int(k))
            check[key] = _worse(status, check.get(key, status))
            listed[key] = listed.get(key, 0) + 1
            before = cv.get(key, math.nan)
            cv[key] = float(row_cv if math.isnan(before) or row_cv > before else before)
        timed.append(medians)
    times = np.full((len(index), len(runs)), np.nan)
    for column, medians in enumerate(timed):
        for key, time_us in medians.items():
            times[index[key], column] = time_us
    ks = {key: tuple(sorted(values)) for key, values in iters.items()}
    return RunMedians(times, index, check, listed, cv, ks)


def _worse(check: str, other: str) -> str:
    """Of two runs' checks of a row, the one that speaks for both: a fail, then a skip."""
    for worst in ("fail", "skipped"):
        if worst in (check, other):
            return worst
    return check
