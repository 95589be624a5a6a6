"""Statistics of timing samples. Pure functions of numbers: no torch, no processes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

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

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    The interval between the order statistics that a Binomial(n, 1/2) count brackets
    with the requested probability (Conover, "Practical Nonparametric Statistics",
    3rd ed., section 3.2); scipy's `quantile_test` implements it. NaN when there are
    too few samples for the requested confidence (fewer than 6 at 95%).
    """
    from scipy.stats import quantile_test

    values = np.asarray(samples, dtype=float)
    if values.size < 2:
        return math.nan, math.nan
    interval = quantile_test(values, p=0.5).confidence_interval(confidence)
    low, high = float(interval.low), float(interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return math.nan, math.nan
    return low, high


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
