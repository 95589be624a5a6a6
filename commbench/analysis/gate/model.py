"""The gate's tests and where each one's between-run spread comes from (docs/gate.md).

A run's log median time of row r is mu_r + d + g + e_r: d the drift the whole run
shares, g its collective/variant's own drift on top of it, e_r the row's wobble. Drift
is shared across collectives, so a test per collective spends its power on what every
collective sees alike. The gate asks three questions, each one-sided (slower), each at
its own stated level, Bonferroni-split inside its family:

- overall (the main test): the mean log ratio over every compared row, against how far
  that mean moves between runs. Sees a shift every row shares.
- collective: a collective/variant's mean log ratio less the overall one (a contrast:
  d cancels), against how far that contrast moves between runs.
- row: a row's log ratio less the overall one, likewise.

Each spread is the history's, the runs' same contrast around its mean over the runs,
weighed with the backend's prior for that contrast (priors.py). The current side is one
run or the mean of C reruns of the same code, each drifting on its own, so each test's
scale is its spread times sqrt(1/C + 1/B) against B baseline runs.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np

from commbench.analysis.gate.power import (
    MAX_DETECTABLE,
    baselines_needed,
    judge_shift,
    ratio_from_log,
)
from commbench.analysis.gate.priors import Prior, weigh
from commbench.analysis.stats import Spread, history_spread, one_sided

# One-sided false-alarm levels per gate run, each family's split over its tests. Together
# at most 3% of clean gate runs exit 1; `make gate` reruns once on exit 1 and believes it
# only when the rerun, judged alone, exits 1 too (docs/gate.md, "Confirming an alarm").
OVERALL_LEVEL = 0.01
COLLECTIVE_LEVEL = 0.01
ROW_LEVEL = 0.01


def centred(logs: np.ndarray) -> np.ndarray:
    """runs x keys: each key's log less its mean over the runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a key no run timed: all NaN
        return logs - np.nanmean(logs, axis=0)


def run_drift(logs: np.ndarray) -> np.ndarray:
    """Each run's mean deviation over the keys it timed: the drift its rows share."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(centred(logs), axis=1)


@dataclass(frozen=True)
class Judged:
    """One test's verdict on a log shift (of a mean, or of a contrast)."""

    low: float
    high: float
    p_value: float  # one-sided: that drift alone makes it this much slower, or more
    detectable: float  # the smallest shift of the judged thing alone that shows, 9 in 10
    slower: bool  # the one-sided test: the interval's low end above 1
    faster: bool
    spread: Spread | None
    needed: float  # baseline runs in all that would see `wanted`; NaN when unknown

    @property
    def source(self) -> str:
        return self.spread.source if self.spread else ""


def judge(
    log_shift: float,
    prior: Spread | None,
    history: Spread | None,
    measured_df: int,
    baselines: int,
    tolerance: float,
    confidence: float,
    currents: int,
    dilution: float = 1.0,
    wanted: float = math.inf,
) -> Judged:
    """Judge a log shift, of the mean of `currents` runs, on the weighed spread.
    `dilution`: the share of a shift of the judged thing alone that reaches the statistic
    (1 - rows / all rows for a contrast: a collective's slowdown moves the overall mean
    too), so `detectable` and `wanted` are in the judged thing's own terms."""
    spread = weigh(prior, history, measured_df)
    if spread is None:
        return Judged(*(math.nan,) * 4, False, False, None, math.nan)
    shift = judge_shift(log_shift, spread, baselines, tolerance, confidence, currents)
    detectable = ratio_from_log(math.log(shift.detectable) / dilution)
    detectable = math.inf if detectable > MAX_DETECTABLE else detectable
    needed = float(baselines)
    if detectable > wanted:
        prior_df = spread.df - (history.df if history and spread is not prior else 0)
        found = baselines_needed(
            spread, baselines, tolerance, confidence, wanted**dilution, prior_df, currents
        )
        needed = math.nan if found is None else float(found)
    half = shift.p_value / 2  # judge_shift's p is two-sided
    return Judged(
        low=shift.low,
        high=shift.high,
        p_value=half if log_shift > 0 else 1 - half,
        detectable=detectable,
        slower=shift.slower,
        faster=shift.high < 1,
        spread=spread,
        needed=needed,
    )


@dataclass(frozen=True)
class _Test:
    """What one test asks of `judge`: its confidence, the tolerance, the share of the
    judged thing's own shift that reaches its statistic, and the shift it must see."""

    confidence: float
    tolerance: float
    dilution: float = 1.0
    wanted: float = math.inf


@dataclass(frozen=True)
class Layout:
    """The compared rows of one gate run, grouped, with the history's log medians."""

    logs: np.ndarray  # baseline runs x compared keys
    shifts: np.ndarray  # each compared key's log ratio, current / baseline
    groups: dict[tuple, list[int]]  # (collective, variant) -> columns of its keys
    prior: Prior | None
    baselines: int
    currents: int  # current runs judged together: `shifts` are of their mean

    @property
    def rows(self) -> int:
        return self.shifts.size

    def overall(self, tolerance: float, wanted: float) -> tuple[float, Judged]:
        """The main test: the mean log ratio over every row."""
        return self.level(list(range(self.rows)), tolerance, one_sided(OVERALL_LEVEL), wanted)

    def level(
        self, columns: list[int], tolerance: float, confidence: float, wanted: float = math.inf
    ) -> tuple[float, Judged]:
        """The mean log ratio over `columns` (the overall test's when all), judged on how
        far that mean moves between the runs of `logs`."""
        history = history_spread(run_drift(self.logs[:, columns]))
        prior = self.prior.aggregate(len(columns)) if self.prior else None
        mean = float(self.shifts[columns].mean())
        test = _Test(confidence, tolerance, wanted=wanted)
        return mean, self._judge(mean, prior, history, test)

    def collective(self, columns: list[int], tolerance: float, wanted: float) -> Judged:
        """A collective/variant against the run: its mean log ratio less the overall."""
        drift = run_drift(self.logs)
        history = history_spread(run_drift(self.logs[:, columns]) - drift)
        share = len(columns) / self.rows
        prior = self.prior.group_contrast(len(columns), self.rows) if self.prior else None
        contrast = float(self.shifts[columns].mean() - self.shifts.mean())
        confidence = one_sided(COLLECTIVE_LEVEL, len(self.groups))
        test = _Test(confidence, tolerance, dilution=1 - share, wanted=wanted)
        return self._judge(contrast, prior, history, test)

    def row(self, column: int, baselines: int, currents: int, tolerance: float) -> Judged:
        """A row against the run: its log ratio less the overall mean, judged on the
        baseline and current runs that timed it."""
        prior = self.prior.row_contrast(self.rows) if self.prior else None
        contrast = float(self.shifts[column] - self.shifts.mean())
        test = _Test(one_sided(ROW_LEVEL, self.rows), tolerance, dilution=1 - 1 / self.rows)
        return self._judge(contrast, prior, self._row_history, test, baselines, currents)

    def _judge(
        self,
        log_shift: float,
        prior: Spread | None,
        history: Spread | None,
        test: _Test,
        baselines: int | None = None,
        currents: int | None = None,
    ) -> Judged:
        """`judge` on this layout's runs (or a row's own `baselines` and `currents`)."""
        return judge(
            log_shift,
            prior,
            history,
            self._measured,
            self.baselines if baselines is None else baselines,
            test.tolerance,
            test.confidence,
            self.currents if currents is None else currents,
            dilution=test.dilution,
            wanted=test.wanted,
        )

    @functools.cached_property
    def _row_history(self) -> Spread | None:
        """Every row's deviation from its run's drift, pooled: the rows share one model."""
        return history_spread(centred(self.logs) - run_drift(self.logs)[:, None])

    @property
    def _measured(self) -> int:
        return self.prior.runs - 1 if self.prior else 1
