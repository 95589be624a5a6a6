"""Statistics on synthetic samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from commbench.stats import (
    POWER,
    Spread,
    detectable_shift,
    history_spread,
    judge_shift,
    median_ci,
    pool,
    stop_reason,
    summarize,
    tukey_outliers,
)


def test_summary_of_known_samples() -> None:
    samples = np.arange(1.0, 101.0)  # 1..100
    s = summarize(samples)
    assert s.median == 50.5
    assert s.min == 1.0 and s.mean == 50.5
    assert s.p10 == pytest.approx(10.9) and s.p90 == pytest.approx(90.1)
    assert s.ci_low < s.median < s.ci_high
    assert s.samples == 100 and s.outliers == 0


def test_median_ci_brackets_order_statistics_and_needs_samples() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(100, 5, size=200)
    low, high = median_ci(values)
    assert low < np.median(values) < high
    assert high - low < 3  # about 2 * 1.96 * 1.25 * 5 / sqrt(200) = 1.7
    assert all(math.isnan(v) for v in median_ci([1.0, 2.0, 3.0]))


def test_tukey_outliers_counts_far_points() -> None:
    assert tukey_outliers([10, 11, 10, 12, 11, 10, 50]) == 1
    assert tukey_outliers([10, 11, 10, 12, 11, 10]) == 0


def test_stop_rules() -> None:
    rules = {"min_samples": 5, "max_samples": 20, "target_ci": 0.02, "max_seconds": 1.0}
    tight = [100.0, 100.1, 99.9, 100.0, 100.05, 99.95, 100.0, 100.02]
    noisy = [100.0, 150.0, 80.0, 120.0, 95.0, 130.0]
    assert stop_reason(tight[:4], 0.1, **rules) is None  # below min_samples
    assert stop_reason(tight, 0.1, **rules) == "ci"
    assert stop_reason(noisy, 0.1, **rules) is None
    assert stop_reason(noisy, 1.5, **rules) == "max_seconds"
    assert stop_reason(noisy * 4, 0.1, **rules) == "max_samples"
    assert stop_reason(noisy[:3], 9.0, **rules) is None  # the budget never undercuts the floor


@pytest.mark.parametrize("n", [1, 2, 5, 6, 7, 12, 30, 31, 200])
def test_median_ci_is_scipys_quantile_test_interval(n: int) -> None:
    """The cached ranks give scipy's interval exactly, ties included."""
    from scipy.stats import quantile_test

    rng = np.random.default_rng(n)
    for values in (rng.lognormal(0, 0.3, n), np.round(rng.lognormal(0, 0.3, n), 1)):
        ours = median_ci(values)
        if n < 2:
            assert all(math.isnan(v) for v in ours)
            continue
        theirs = quantile_test(values, p=0.5).confidence_interval(0.95)
        if math.isfinite(theirs.low) and math.isfinite(theirs.high):
            assert ours == (theirs.low, theirs.high)
        else:
            assert all(math.isnan(v) for v in ours)


def test_history_spread_is_between_runs_with_runs_minus_one_degrees() -> None:
    # rows far apart within a run, runs 10% apart: the spread is the runs' 0.1, not the rows'
    drift = np.log([1.0, 1.1, 1.0, 1.1])
    rows = np.log([10.0, 1000.0, 50.0])
    spread = history_spread(drift[:, None] + rows[None, :])
    assert spread is not None and spread.df == 3
    assert spread.sd == pytest.approx(np.std(drift, ddof=1))
    assert history_spread(rows[None, :]) is None  # one run: no spread at all
    assert history_spread(np.vstack([rows, rows])) is None  # runs that agree exactly
    with_gap = drift[:, None] + rows[None, :]
    with_gap[0, 0] = np.nan  # a row one run did not measure still counts where it was
    assert history_spread(with_gap).sd == pytest.approx(spread.sd, rel=0.3)


def test_pool_weights_by_degrees_of_freedom() -> None:
    prior, history = Spread(0.2, 9, "prior"), Spread(0.1, 3, "history")
    pooled = pool(prior, history)
    assert pooled.df == 12 and pooled.source == "prior + history"
    assert pooled.sd == pytest.approx(math.sqrt((9 * 0.04 + 3 * 0.01) / 12))
    assert pool(None, history) == history and pool(None, None) is None


def test_judge_shift_is_a_t_prediction_interval_never_of_zero_width() -> None:
    from scipy.stats import t

    spread = Spread(0.1, 4, "history")
    same = judge_shift(0.0, spread, baselines=5, tolerance=0.2)
    half = t.ppf(0.995, 4) * 0.1 * math.sqrt(1 + 1 / 5)
    assert (same.low, same.ratio, same.high) == pytest.approx((math.exp(-half), 1, math.exp(half)))
    assert not same.significant and same.p_value == pytest.approx(1.0)
    slow = judge_shift(math.log(2.0), spread, baselines=5, tolerance=0.2)
    assert slow.significant and slow.low > 1 and slow.p_value < 0.01
    # one baseline run: both sides drift, so the interval is wider than with five
    assert judge_shift(0.0, spread, baselines=1, tolerance=0.2).high > same.high


def test_the_minimum_detectable_shift_is_caught_nine_times_in_ten() -> None:
    """Simulated runs drifting by a known sd: a true shift of the reported size is
    flagged about POWER of the time, a smaller one less often."""
    rng = np.random.default_rng(0)
    sd, n = 0.08, 5
    spread = Spread(sd, 10_000, "known")  # known sd: only the t quantiles matter
    detectable = detectable_shift(spread, n, tolerance=0.1)
    assert detectable > 1.1

    def caught(ratio: float) -> float:
        base = rng.normal(0, sd, (4000, n)).mean(axis=1)
        current = math.log(ratio) + rng.normal(0, sd, 4000)
        flagged = [judge_shift(c - b, spread, n, 0.1) for b, c in zip(base, current, strict=True)]
        return np.mean([s.significant and s.ratio > 1.1 for s in flagged])

    assert caught(detectable) == pytest.approx(POWER, abs=0.03)
    assert caught(1.0) < 0.01  # false alarms at the interval's one-sided 0.5%
    # more baseline runs, or a spread known from more runs, see smaller shifts
    assert detectable_shift(spread, 20, 0.1) < detectable
    assert detectable_shift(Spread(sd, 4, "few"), n, 0.1) > detectable
