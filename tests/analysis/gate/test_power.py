"""The gate's power: the detectable shift against scipy's noncentral t and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from commbench.analysis.gate.power import (
    MAX_DETECTABLE,
    POWER,
    SPREAD_BOUND,
    baselines_needed,
    detectable_shift,
    flag_power,
    upper_sd,
)
from commbench.analysis.stats import Spread, one_sided

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor


@pytest.mark.parametrize("df", [1, 2, 4, 9, 10_000])
def test_flag_power_is_the_noncentral_t_where_the_tolerance_does_not_bind(df: int) -> None:
    from scipy.stats import nct, t

    critical = t.ppf(0.995, df)
    for noncentrality in (0.5, 3.0, 8.0):
        expected = nct.sf(critical, df, noncentrality)
        assert flag_power(noncentrality, critical, df) == pytest.approx(expected, abs=2e-4)


@pytest.mark.parametrize(("df", "currents"), [(2, 1), (4, 1), (9, 1), (4, 2), (4, 3)])
def test_the_detectable_shift_solves_the_noncentral_t_for_ninety_percent(
    df: int, currents: int
) -> None:
    """At tolerance 0 the detectable shift is exp(l * s * sqrt(1/C + 1/n)) for C current
    runs judged together, where the noncentral t with df degrees of freedom and
    noncentrality l exceeds the one-sided critical value 9 times in 10 (scipy's nct,
    solved here on its own)."""
    from scipy.optimize import brentq
    from scipy.stats import nct, t

    spread, baselines = Spread(0.1, df, ""), 5
    critical = t.ppf(0.99, df)
    noncentrality = brentq(lambda nc: nct.sf(critical, df, nc) - 0.9, 0, 200)
    expected = math.exp(noncentrality * 0.1 * math.sqrt(1 / currents + 1 / baselines))
    detectable = detectable_shift(spread, baselines, 0.0, one_sided(0.01), currents, bound=None)
    assert detectable == pytest.approx(expected, rel=2e-3)
    # with the spread at its upper bound, the same noncentrality on a wider sd
    wider = math.exp(math.log(expected) * upper_sd(spread) / spread.sd)
    assert detectable_shift(spread, baselines, 0.0, one_sided(0.01), currents) == pytest.approx(
        wider, rel=2e-3
    )


def _caught(rng, ratio: float, sd: float, tolerance: float, n: int = 5) -> float:
    """How often the one-sided test at 1% with the tolerance flags a true shift of
    `ratio`, the sd estimated from a simulated history of n runs."""
    trials, df = 40_000, n - 1
    critical = t_quantile(0.99, df)
    history = rng.normal(0, sd, (trials, n))
    estimate = history.std(axis=1, ddof=1)
    shift = math.log(ratio) + rng.normal(0, sd, trials) - history.mean(axis=1)
    flagged = (shift > critical * estimate * math.sqrt(1 + 1 / n)) & (shift > math.log1p(tolerance))
    return float(flagged.mean())


def test_where_the_tolerance_binds_the_detectable_shift_is_its_own() -> None:
    """Runs that hardly drift (sd 2%) and a 20% tolerance: the tolerance, not the test,
    decides what shows; still caught 9 times in 10."""
    rng = np.random.default_rng(1)
    detectable = detectable_shift(Spread(0.02, 4, ""), 5, 0.2, one_sided(0.01), bound=None)
    assert detectable > 1.2
    assert _caught(rng, detectable, 0.02, 0.2) == pytest.approx(POWER, abs=0.015)


def test_the_minimum_detectable_shift_is_caught_nine_times_in_ten_at_small_df() -> None:
    """Simulated histories of 5 runs drifting by a known sd, the sd estimated from them
    (4 df), and the one-sided test at 1% with the tolerance: a true shift of the reported
    size is flagged about POWER of the time, whatever the estimate came out as."""
    rng = np.random.default_rng(0)
    sd, n, df, tolerance = 0.08, 5, 4, 0.1
    detectable = detectable_shift(Spread(sd, df, ""), n, tolerance, one_sided(0.01), bound=None)
    assert _caught(rng, detectable, sd, tolerance) == pytest.approx(POWER, abs=0.015)
    assert _caught(rng, 1.0, sd, tolerance) < 0.011  # false alarms at the one-sided 1%
    # the normal approximation (t quantiles added as if s were sigma) claims less
    naive = math.exp((t_quantile(0.99, df) + t_quantile(POWER, df)) * sd * math.sqrt(1 + 1 / n))
    assert naive < detectable and _caught(rng, naive, sd, tolerance) < POWER - 0.025
    # more baseline runs, or a spread known from more runs, see smaller shifts
    more_runs = detectable_shift(Spread(sd, df, ""), 20, tolerance, one_sided(0.01), bound=None)
    fewer_df = detectable_shift(Spread(sd, 2, ""), n, tolerance, one_sided(0.01), bound=None)
    assert more_runs < detectable < fewer_df


def test_the_reported_shift_is_caught_nine_times_in_ten_in_nine_histories_of_ten() -> None:
    """The detectable shift rests on the spread's upper bound: over histories of 5 runs
    drawn with a known sd, the shift each one reports is caught (by the test, at the true
    sd) at least 9 times in 10 in at least SPREAD_BOUND of them; the plug-in estimate's
    shift, in about half."""
    rng = np.random.default_rng(3)
    sd, n, df, tolerance, confidence = 0.08, 5, 4, 0.02, one_sided(0.01)
    critical = t_quantile(0.99, df)
    scale = math.sqrt(1 + 1 / n)

    def covered(bound: float | None) -> float:
        estimates = rng.normal(0, sd, (4000, n)).std(axis=1, ddof=1)
        caught = []
        for estimate in estimates[:400]:
            shift = detectable_shift(Spread(float(estimate), df, ""), n, tolerance, confidence,
                                     bound=bound)  # fmt: skip
            power = flag_power(math.log(shift) / (sd * scale), critical, df,
                               math.log1p(tolerance) / (sd * scale))  # fmt: skip
            caught.append(power >= POWER)
        return float(np.mean(caught))

    assert covered(SPREAD_BOUND) >= SPREAD_BOUND - 0.03
    assert 0.3 < covered(None) < 0.7


def t_quantile(probability: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(probability, df))


def test_baselines_needed_is_the_first_count_that_sees_the_shift() -> None:
    spread = Spread(0.04, 3, "")  # a prior of 3 df alone
    confidence = one_sided(0.01)
    needed = baselines_needed(spread, 1, 0.03, confidence, 1.2, prior_df=3)
    assert needed is not None and needed > 1
    seen = detectable_shift(Spread(0.04, 3 + needed - 1, ""), needed, 0.03, confidence)
    unseen = detectable_shift(Spread(0.04, 3 + needed - 2, ""), needed - 1, 0.03, confidence)
    assert seen <= 1.2 < unseen
    # (2.33 + 1.28) * 0.1 = 0.36: above log(1.2) however many runs
    assert baselines_needed(Spread(0.1, 3, ""), 1, 0.03, confidence, 1.2, prior_df=3) is None


def test_more_current_runs_need_fewer_baseline_runs() -> None:
    """Three current runs judged together drift a third as much as one: fewer baseline
    runs see the shift, and the count found is the first that does with three."""
    spread, confidence = Spread(0.04, 3, ""), one_sided(0.01)
    one = baselines_needed(spread, 1, 0.03, confidence, 1.2, prior_df=3)
    three = baselines_needed(spread, 1, 0.03, confidence, 1.2, prior_df=3, currents=3)
    assert one is not None and three is not None and three < one
    seen = detectable_shift(Spread(0.04, 3 + three - 1, ""), three, 0.03, confidence, 3)
    unseen = detectable_shift(Spread(0.04, 3 + three - 2, ""), three - 1, 0.03, confidence, 3)
    assert seen <= 1.2 < unseen


def test_a_shift_no_run_could_show_is_infinite() -> None:
    """One degree of freedom at a row's level: the critical t is in the hundreds, and the
    spread's upper bound wide; a shift beyond MAX_DETECTABLE, or beyond a float, is `inf`
    ("cannot see"), not a figure."""
    assert detectable_shift(Spread(0.3, 1, ""), 2, 0.5, 0.999, bound=None) == math.inf
    assert detectable_shift(Spread(0.01, 1, ""), 2, 0.5, 0.999) == math.inf
    near = detectable_shift(Spread(0.02, 4, ""), 2, 0.05, 0.99)
    assert 1 < near <= MAX_DETECTABLE
