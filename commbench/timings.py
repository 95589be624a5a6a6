"""Each row's median time in each of one or more runs: the unit the gate and compare judge.

A run, not a sample: samples taken back to back inside one run share its drift, and
the variance that matters is between runs (METHOD.md, "Comparing and gating").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from commbench.results import KEY_COLUMNS, Run


@dataclass(frozen=True)
class RunMedians:
    """Median times (us) per row key (index) and run (columns 0..n-1)."""

    times: pd.DataFrame  # NaN where the run has no timed, passing row
    check: dict[tuple, str]  # "fail" when any run failed the row, else the first run's check
    cv: dict[tuple, float]  # the largest cv any run reported for the row

    @property
    def runs(self) -> int:
        return self.times.shape[1]

    def logs(self, keys: list[tuple]) -> np.ndarray:
        """runs x keys matrix of log median times."""
        return np.log(self.times.loc[keys].to_numpy(dtype=float).T)


def run_medians(runs: list[Run]) -> RunMedians:
    results = pd.concat(
        [run.results.assign(run=number) for number, run in enumerate(runs)], ignore_index=True
    )
    timed = results[results["check"].eq("pass") & (results["samples"] > 0)]
    times = timed.pivot_table(index=KEY_COLUMNS, columns="run", values="time_us", aggfunc="first")
    every_key = pd.MultiIndex.from_frame(results[KEY_COLUMNS].drop_duplicates())
    times = times.reindex(index=every_key, columns=range(len(runs)))
    by_key = results.groupby(KEY_COLUMNS)
    failed = by_key["check"].agg(lambda checks: checks.eq("fail").any())
    check = by_key["check"].first().where(~failed, "fail")
    return RunMedians(
        times=times.astype(float), check=check.to_dict(), cv=by_key["cv"].max().to_dict()
    )
