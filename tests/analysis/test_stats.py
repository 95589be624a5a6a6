"""Statistics on synthetic samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from commbench.analysis.gate.power import judge_shift
from commbench.analysis.stats import (
    Spread,
    StopRule,
    ci_ranks_upto,
    family_confidence,
    history_spread,
    median_ci,
    median_ci_ranks,
    one_sided,
    pool,
    summarize,
    tukey_outliers,
)

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor


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


def _first_stop(samples: list[float], elapsed: list[float], **rules) -> tuple[int, str] | None:
    """(how many samples were taken, which rule) when a StopRule fed these ends sampling."""
    rule = StopRule(**rules)
    for count, (sample, seconds) in enumerate(zip(samples, elapsed, strict=True), start=1):
        if reason := rule.add(sample, seconds):
            return count, reason
    return None


def test_stop_rules() -> None:
    rules = {"min_samples": 5, "max_samples": 20, "target_ci": 0.02, "max_seconds": 1.0}
    tight = [100.0, 100.1, 99.9, 100.0, 100.05, 99.95, 100.0, 100.02]
    noisy = [100.0, 150.0, 80.0, 120.0, 95.0, 130.0]
    assert _first_stop(tight, [0.1] * 8, **rules) == (6, "ci")  # the first count with a CI
    assert _first_stop(noisy, [0.1] * 6, **rules) is None
    assert _first_stop(noisy, [0.1] * 5 + [1.5], **rules) == (6, "max_seconds")
    assert _first_stop(noisy * 4, [0.1] * 24, **rules) == (20, "max_samples")
    assert _first_stop(noisy[:3], [9.0] * 3, **rules) is None  # the budget never undercuts 5


def _old_stop_reason(samples, elapsed_s, *, min_samples, max_samples, target_ci, max_seconds):
    """The stop rule as it was first computed: from all the samples, after each
    new one, with scipy's own interval (quantile_test) and numpy's median."""
    from scipy.stats import quantile_test

    if len(samples) < min_samples:
        return None
    interval = quantile_test(np.asarray(samples), p=0.5).confidence_interval(0.95)
    if math.isfinite(interval.low) and math.isfinite(interval.high):
        median = float(np.median(samples))
        if max(median - interval.low, interval.high - median) <= target_ci * median:
            return "ci"
    if len(samples) >= max_samples:
        return "max_samples"
    if elapsed_s >= max_seconds:
        return "max_seconds"
    return None


@pytest.mark.parametrize("seed", range(8))
def test_the_incremental_stop_rule_decides_as_the_whole_computation_did(seed: int) -> None:
    """Sample by sample, on noisy, tied, drifting and heavy-tailed sequences under random
    rules: the same decision after every sample as the old computation, until it stops."""
    rng = np.random.default_rng(seed)
    n = 200
    shapes = [
        rng.lognormal(0, 0.05 * (1 + seed % 4), n),
        np.round(rng.lognormal(0, 0.05, n), 2),  # ties
        1 + np.linspace(0, 0.2, n) + rng.normal(0, 0.01, n),  # drift
        1 + rng.pareto(1.5, n) * 0.01,  # heavy tail
    ]
    for samples in shapes:
        elapsed = np.cumsum(rng.uniform(0, 0.02, n))
        rules = {
            "min_samples": int(rng.integers(2, 8)),
            "max_samples": int(rng.integers(5, n)),
            "target_ci": float(rng.choice([0.003, 0.01, 0.03])),
            "max_seconds": float(rng.uniform(0.5, 4)),
        }
        rule = StopRule(**rules)
        for count in range(1, n + 1):
            old = _old_stop_reason(list(samples[:count]), elapsed[count - 1], **rules)
            assert rule.add(float(samples[count - 1]), elapsed[count - 1]) == old, count
            if old:
                break


def test_the_incremental_stop_rule_ends_by_every_rule() -> None:
    """Each rule ends sampling somewhere, as the old computation has it."""
    rng = np.random.default_rng(0)
    noisy = list(rng.lognormal(0, 0.5, 40))
    tight = list(rng.lognormal(0, 0.001, 40))
    elapsed = [0.01 * i for i in range(40)]
    cases = [
        (tight, {"min_samples": 5, "max_samples": 40, "target_ci": 0.01, "max_seconds": 99.0}),
        (noisy, {"min_samples": 5, "max_samples": 10, "target_ci": 0.001, "max_seconds": 99.0}),
        (noisy, {"min_samples": 5, "max_samples": 40, "target_ci": 0.001, "max_seconds": 0.1}),
    ]
    for (samples, rules), expected in zip(cases, ("ci", "max_samples", "max_seconds"), strict=True):
        count, reason = _first_stop(samples, elapsed, **rules)
        assert reason == expected
        assert _old_stop_reason(samples[:count], elapsed[count - 1], **rules) == expected
        assert _old_stop_reason(samples[: count - 1], elapsed[count - 2], **rules) is None


def test_the_rank_table_is_scipys_quantile_test_for_every_count() -> None:
    """The ranks a StopRule looks up, for every count up to 300, are scipy's own."""
    from scipy.stats import quantile_test

    for n, ranks in enumerate(ci_ranks_upto(300)):
        if n < 2:
            assert ranks is None
            continue
        interval = quantile_test(np.arange(n, dtype=float), p=0.5).confidence_interval(0.95)
        finite = math.isfinite(interval.low) and math.isfinite(interval.high)
        assert ranks == ((int(interval.low), int(interval.high)) if finite else None), n


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_the_exact_ranks_are_scipys_binomial_quantiles_far_beyond_any_sweep(
    confidence: float,
) -> None:
    """The walk over n (exact integers, no scipy) gives `binom.ppf(tail) - 1` and
    `binom.isf(tail)` for every count up to 4096, the rule quantile_test applies."""
    from scipy.stats import binom

    counts = np.arange(4097)
    tail = (1 - confidence) / 2
    lows, highs = binom.ppf(tail, counts, 0.5) - 1, binom.isf(tail, counts, 0.5)
    for n, low, high in zip(counts.tolist(), lows.tolist(), highs.tolist(), strict=True):
        expected = (int(low), int(high)) if n >= 2 and low >= 0 and high < n else None
        assert median_ci_ranks(n, confidence) == expected, n


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
    assert slow.significant and slow.slower and slow.low > 1 and slow.p_value < 0.01
    fast = judge_shift(-math.log(2.0), spread, baselines=5, tolerance=0.2)
    assert fast.significant and not fast.slower  # the gate's test is of a slowdown only
    # one baseline run: both sides drift, so the interval is wider than with five
    assert judge_shift(0.0, spread, baselines=1, tolerance=0.2).high > same.high


def test_the_mean_of_current_runs_drifts_by_one_over_their_count() -> None:
    """C current runs judged together: the variance of their mean is s^2 / C, the
    baselines' mean's s^2 / B, so the interval's half-width is t s sqrt(1/C + 1/B)."""
    from scipy.stats import t

    spread = Spread(0.1, 4, "history")
    for currents in (1, 2, 3):
        half = t.ppf(0.995, 4) * 0.1 * math.sqrt(1 / currents + 1 / 5)
        shift = judge_shift(0.0, spread, baselines=5, tolerance=0.2, currents=currents)
        assert (shift.low, shift.high) == pytest.approx((math.exp(-half), math.exp(half)))


def test_family_confidence_and_one_sided_levels_are_bonferroni() -> None:
    assert family_confidence(1) == pytest.approx(0.99)
    assert family_confidence(5) == pytest.approx(0.998)
    assert family_confidence(4, 0.9) == pytest.approx(0.975)
    assert family_confidence(0) == pytest.approx(0.99)  # no tests: as one
    assert one_sided(0.01) == pytest.approx(0.98)  # the low end alone: 1% below it
    assert one_sided(0.01, 4) == pytest.approx(0.995)
