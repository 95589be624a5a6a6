"""Statistics on synthetic samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from commbench.stats import median_ci, stop_reason, summarize, tukey_outliers


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
