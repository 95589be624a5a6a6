"""Statistics of timing samples. Pure functions of numbers: no torch, no processes."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNSTABLE_CV = 0.10


@dataclass(frozen=True)
class Summary:
    """The per-point figures of METHOD.md, all in the unit of the samples."""

    median: float
    p10: float
    p90: float
    min: float
    mean: float
    std: float
    ci_low: float
    ci_high: float
    cv: float
    outliers: int
    samples: int


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    The interval between the order statistics that a Binomial(n, 1/2) count brackets
    with the requested probability (Conover, "Practical Nonparametric Statistics",
    3rd ed., section 3.2); scipy's `quantile_test` implements it. NaN when there are
    too few samples for the requested confidence (fewer than 6 at 95%).
    """
    values = np.sort(np.asarray(samples, dtype=float))
    indices = _median_ci_ranks(values.size, confidence)
    if indices is None:
        return math.nan, math.nan
    return float(values[indices[0]]), float(values[indices[1]])


@functools.cache
def _median_ci_ranks(n: int, confidence: float) -> tuple[int, int] | None:
    """Which order statistics bound the interval for n samples, or None if none do.

    The interval depends on the ranks only, so scipy's answer for the values 0..n-1 is
    the pair of ranks itself. Cached: the stop rule asks after every sample, and
    `quantile_test` costs about 2 ms a call, as much as a sample's collective.
    """
    from scipy.stats import quantile_test

    if n < 2:
        return None
    interval = quantile_test(np.arange(n, dtype=float), p=0.5).confidence_interval(confidence)
    if not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        return None
    return int(interval.low), int(interval.high)


def tukey_outliers(samples: Sequence[float]) -> int:
    """How many samples lie beyond 1.5 interquartile ranges of the quartiles (Tukey)."""
    values = np.asarray(samples, dtype=float)
    q1, q3 = np.percentile(values, [25, 75])
    fence = 1.5 * (q3 - q1)
    return int(np.count_nonzero((values < q1 - fence) | (values > q3 + fence)))


def summarize(samples: Sequence[float]) -> Summary:
    values = np.asarray(samples, dtype=float)
    median = float(np.median(values))
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    ci_low, ci_high = median_ci(values)
    return Summary(
        median=median,
        p10=float(np.percentile(values, 10)),
        p90=float(np.percentile(values, 90)),
        min=float(values.min()),
        mean=mean,
        std=std,
        ci_low=ci_low,
        ci_high=ci_high,
        cv=std / mean if mean > 0 else math.nan,
        outliers=tukey_outliers(values),
        samples=int(values.size),
    )


def ci_within(samples: Sequence[float], target: float) -> bool:
    """True when the 95% CI of the median lies within +-target (relative) of the median."""
    low, high = median_ci(samples)
    if math.isnan(low):
        return False
    median = float(np.median(samples))
    return max(median - low, high - median) <= target * median


def stop_reason(
    samples: Sequence[float],
    elapsed_s: float,
    *,
    min_samples: int,
    max_samples: int,
    target_ci: float,
    max_seconds: float,
) -> str | None:
    """Which rule ends sampling now, or None to take another sample.

    `min_samples` is a floor that every other rule respects.
    """
    count = len(samples)
    if count < min_samples:
        return None
    if ci_within(samples, target_ci):
        return "ci"
    if count >= max_samples:
        return "max_samples"
    if elapsed_s >= max_seconds:
        return "max_seconds"
    return None


@dataclass(frozen=True)
class ShiftTest:
    """Whether a current set of timings differs from a baseline beyond chance."""

    ratio: float  # current median / baseline median
    p_value: float  # NaN for the confidence-interval rule
    method: str  # "rounds", "samples" or "ci99"
    significant: bool


MIN_UNITS = 5  # Mann-Whitney U at p < 0.01 needs 5 per side: 2 / C(10, 5) = 0.008
MIN_SAMPLES = 6


def shift_test(
    base_samples: Sequence[float],
    current_samples: Sequence[float],
    base_units: Sequence[float] = (),
    current_units: Sequence[float] = (),
    alpha: float = 0.01,
) -> ShiftTest:
    """Test a location shift between baseline and current (METHOD.md, "Comparing and gating").

    The preferred units are per-round (or per-run) medians: they carry the run-to-run
    noise that back-to-back samples hide. With at least MIN_UNITS of them per side,
    Mann-Whitney U runs on those; else on the raw samples (at least MIN_SAMPLES per
    side); else the 99% confidence intervals of the two medians must not overlap.
    """
    from scipy.stats import mannwhitneyu

    base = np.asarray(base_samples, dtype=float)
    current = np.asarray(current_samples, dtype=float)
    ratio = float(np.median(current) / np.median(base))
    if len(base_units) >= MIN_UNITS and len(current_units) >= MIN_UNITS:
        p = float(mannwhitneyu(current_units, base_units, alternative="two-sided").pvalue)
        return ShiftTest(ratio, p, "rounds", p < alpha)
    if base.size >= MIN_SAMPLES and current.size >= MIN_SAMPLES:
        p = float(mannwhitneyu(current, base, alternative="two-sided").pvalue)
        return ShiftTest(ratio, p, "samples", p < alpha)
    base_low, base_high = median_ci(base, 0.99)
    low, high = median_ci(current, 0.99)
    if math.isnan(base_low) or math.isnan(low):  # too few samples for any interval
        return ShiftTest(ratio, math.nan, "ci99", False)
    return ShiftTest(ratio, math.nan, "ci99", low > base_high or high < base_low)


def geomean_interval(
    ratios: Sequence[float], confidence: float = 0.99, seed: int = 0
) -> tuple[float, float, float]:
    """Geometric mean of ratios with a bootstrap interval over rows (BCa, scipy).

    A shift common to every row (a typical NCCL regression) can hide inside per-row
    noise and still be plain in the aggregate.
    """
    from scipy.stats import bootstrap

    logs = np.log(np.asarray(ratios, dtype=float))
    center = float(np.exp(logs.mean()))
    if logs.size < 3 or np.ptp(logs) == 0:
        return center, center, center
    result = bootstrap((logs,), np.mean, confidence_level=confidence, n_resamples=2000, rng=seed)
    interval = result.confidence_interval
    return center, float(np.exp(interval.low)), float(np.exp(interval.high))
