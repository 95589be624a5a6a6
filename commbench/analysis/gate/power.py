"""The power of the gate's tests: the smallest shift each one catches 9 times in 10, from
the noncentral t at the interval's real degrees of freedom and an upper confidence bound
on the spread, and how many baseline runs would bring it down to a shift asked for
(docs/gate.md, "The detectable shift, from the noncentral t"); and `judge_shift`, a
shift judged on the between-run spread with the power it had."""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass

import numpy as np

from commbench.analysis.stats import CONFIDENCE, Spread, drift_scale, t_quantile

POWER = 0.90  # the minimum detectable shift is caught 9 times in 10
# ... where the true spread is at most the estimate's upper bound at this confidence: a
# spread estimated from few runs may be the low draw of a wider one, and the shift it
# could see is stated for the wider one (one-sided, from the chi-squared distribution).
SPREAD_BOUND = 0.90
# A detectable shift beyond this says only that no shift a run could show would be seen:
# it is `inf` ("cannot see"), not a figure (a 100x slowdown is not a regression to size).
MAX_DETECTABLE = 100.0
LARGEST_LOG = math.log(sys.float_info.max)  # the largest ratio a float holds, as a log


def ratio_from_log(log_ratio: float) -> float:
    """exp, infinite beyond what a float holds (math.exp raises there): an interval or a
    detectable shift from one degree of freedom can be that wide."""
    return math.inf if log_ratio >= LARGEST_LOG else math.exp(log_ratio)


@functools.cache
def _chi_grid(df: float, points: int = 4000) -> np.ndarray:
    """sqrt(chi2_df / df) at the midpoints of `points` equal slices of its probability:
    an expectation over the estimated sd's error is the mean over this grid."""
    from scipy.stats import chi2

    probabilities = (np.arange(points) + 0.5) / points
    return np.sqrt(chi2.ppf(probabilities, df) / df)


def flag_power(noncentrality: float, critical: float, df: float, floor: float = 0.0) -> float:
    """The probability that a shift of `noncentrality` true sds is flagged: the studentised
    shift T = (noncentrality + Z) / C beyond `critical`, and the shift itself beyond
    `floor` (the tolerance, in true sds). Z is standard normal, C = sqrt(chi2_df / df) the
    estimated sd's error, independent of Z, so

        power = E_C[ Phi(noncentrality - max(critical * C, floor)) ].

    With floor 0 this is the noncentral t's survival function,
    scipy.stats.nct.sf(critical, df, noncentrality) (tests/analysis/gate/test_power.py holds it
    to that); the expectation over C is a mean over `_chi_grid`."""
    from scipy.special import ndtr

    grid = _chi_grid(float(df))
    return float(ndtr(noncentrality - np.maximum(critical * grid, floor)).mean())


def upper_sd(spread: Spread, bound: float | None = SPREAD_BOUND) -> float:
    """The spread's upper confidence bound at `bound` (one-sided): s * sqrt(df / chi2_q)
    with chi2_q the (1 - bound) quantile of chi2(df), since s**2 ~ sigma**2 chi2_df / df.
    None: the estimate itself (the plug-in)."""
    from scipy.stats import chi2

    if bound is None:
        return spread.sd
    return spread.sd * math.sqrt(spread.df / chi2.ppf(1 - bound, spread.df))


@functools.lru_cache(maxsize=4096)  # the rows of one test share all six arguments
def detectable_shift(
    spread: Spread,
    baselines: int,
    tolerance: float,
    confidence: float = CONFIDENCE,
    currents: int = 1,
    bound: float | None = SPREAD_BOUND,
) -> float:
    """Minimum detectable shift: the smallest slowdown (a ratio) flagged with probability
    POWER, where flagging is the one-sided test of `judge_shift`: the interval's low end
    above 1, i.e. T = log_shift / (s * sqrt(1/currents + 1/baselines)) > t_(1-a, df) with
    a = (1 - confidence) / 2 and df the spread's degrees of freedom, and the ratio beyond
    the tolerance.

    Under a true log shift d the statistic T is noncentral t with df degrees of freedom
    and noncentrality d / sigma_c, sigma_c = sigma * sqrt(1/currents + 1/baselines): s is
    only an estimate of sigma (s**2 ~ sigma**2 * chi2_df / df), and at small df that costs
    power a normal approximation does not see. The noncentrality l* with
    `flag_power(l*, t_(1-a, df), df, log(1 + tolerance) / sigma_c) = POWER` is solved
    for, and, sigma taken at its upper confidence bound sigma_U (`upper_sd` at `bound`;
    None: sigma estimated by s),

        detectable = exp(l* * sigma_U * sqrt(1/currents + 1/baselines)):

    with confidence `bound` the true spread is no wider, and a shift this large is caught
    at least 9 times in 10. A thin history's sigma_U is wide, so it says it cannot see
    rather than claim a shift. Infinite ("cannot see") beyond MAX_DETECTABLE: with one
    degree of freedom at a row's level the critical value runs into the hundreds, and no
    shift a run could show is caught 9 times in 10.
    """
    from scipy.optimize import brentq

    scale = upper_sd(spread, bound) * math.sqrt(1 / currents + 1 / baselines)
    critical = t_quantile(0.5 + confidence / 2, spread.df)
    floor = math.log1p(tolerance) / scale
    # the power grows with the noncentrality: bracket POWER between the two ends
    high = max(critical, floor) + 4
    while flag_power(high, critical, spread.df, floor) < POWER:
        high *= 2
    solved = brentq(
        lambda nc: flag_power(nc, critical, spread.df, floor) - POWER, 0.0, high, xtol=1e-6
    )
    shift = ratio_from_log(solved * scale)
    return math.inf if shift > MAX_DETECTABLE else shift


def baselines_needed(
    spread: Spread,
    baselines: int,
    tolerance: float,
    confidence: float,
    wanted: float,
    prior_df: float = 0.0,
    currents: int = 1,
    most: int = 500,
) -> int | None:
    """How many baseline runs in all would bring `detectable_shift` down to `wanted`, with
    `currents` current runs judged together, if the runs spread as `spread` says: each
    baseline run adds a degree of freedom to the spread's estimate beyond the `prior_df`
    that a prior gives. None when no count up to `most` does: the spread itself is too
    wide (more rounds per run, more current runs, or a quieter machine)."""
    for runs in range(max(baselines, 1), most + 1):
        df = prior_df + runs - 1
        spread_then = Spread(spread.sd, df, "")
        if df < 1:
            continue
        if detectable_shift(spread_then, runs, tolerance, confidence, currents) <= wanted:
            return runs
    return None


@dataclass(frozen=True)
class Shift:
    """A current value (one run's, or the mean of reruns') against a baseline's, judged
    on the between-run spread."""

    ratio: float  # current / baseline (exp of the log shift)
    low: float  # prediction interval of the ratio under "nothing changed" ...
    high: float  # ... centred on the observed ratio, as wide as the spread allows
    p_value: float  # two-sided, that a run differs this much by drift alone
    detectable: float  # the smallest slowdown (ratio) flagged 9 times in 10 (power.py)

    @property
    def significant(self) -> bool:
        return self.low > 1 or self.high < 1

    @property
    def slower(self) -> bool:
        """The one-sided test of a slowdown: the low end above 1."""
        return self.low > 1


def judge_shift(
    log_shift: float,
    spread: Spread,
    baselines: int,
    tolerance: float,
    confidence: float = CONFIDENCE,
    currents: int = 1,
) -> Shift:
    """The prediction interval of the mean of `currents` new runs against the mean of
    `baselines` runs whose values scatter by `spread` (Student t with the spread's
    degrees of freedom)."""
    from scipy.special import stdtr  # the t CDF as a plain ufunc: the gate calls this per row

    scale = drift_scale(spread, baselines, currents)
    half = t_quantile(0.5 + confidence / 2, spread.df) * scale
    return Shift(
        ratio=math.exp(log_shift),
        low=math.exp(log_shift - half),
        high=ratio_from_log(log_shift + half),
        p_value=float(2 * stdtr(spread.df, -abs(log_shift) / scale)),
        detectable=detectable_shift(spread, baselines, tolerance, confidence, currents),
    )
