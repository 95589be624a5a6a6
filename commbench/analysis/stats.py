"""Statistics of timing samples. Pure functions of numbers: no torch, no processes."""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

UNSTABLE_CV = 0.10
# A between-run log spread below this is the rounding of runs that agree exactly: no
# timing agrees to a part in 1e12 by chance.
ROUNDING = 1e-12


@dataclass(frozen=True)
class Summary:
    """The per-point figures of docs/method.md, "Timing", all in the unit of the samples."""

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
    indices = median_ci_ranks(values.size, confidence)
    if indices is None:
        return math.nan, math.nan
    return float(values[indices[0]]), float(values[indices[1]])


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """Which order statistics bound the interval for n samples, or None if none do."""
    return _table_upto(n, confidence)[n]


def ci_ranks_upto(largest: int, confidence: float = 0.95) -> tuple[tuple[int, int] | None, ...]:
    """`median_ci_ranks` of every count up to `largest`: what a StopRule looks up. A sweep
    calls it before its first point, so no point pays for computing it."""
    return _table_upto(largest, confidence)[: largest + 1]


def _table_upto(largest: int, confidence: float) -> tuple[tuple[int, int] | None, ...]:
    """A cached rank table reaching `largest`: sizes are powers of two, so a few tables
    serve every count, each computed once."""
    return _rank_table(max(64, 1 << largest.bit_length()), confidence)


@functools.cache
def _rank_table(size: int, confidence: float) -> tuple[tuple[int, int] | None, ...]:
    """`median_ci_ranks` for every n below `size`, in one walk over n.

    scipy's `quantile_test(x, p=0.5)` takes the lower rank at `binom(n, 1/2).ppf(tail) - 1`
    (ppf: the smallest k with P(X <= k) >= tail) and, by the symmetry of Binomial(n, 1/2),
    the upper at n - 1 - lower; valid when inside 0..n-1. These are the same ranks, in
    exact integer arithmetic: the count of outcomes with X <= k, S_n(k), against
    tail * 2**n. Going from n - 1 to n trials, S_n(k) = 2 S_(n-1)(k) - C(n-1, k), and the
    lower rank never goes down, so a table costs a few big-integer steps per n.

    Not scipy.stats: importing it costs each rank of a sweep about as long as importing
    torch (1.9 s on a shared 2-core x86_64 VM), for a table of integers;
    tests/analysis/test_stats.py holds every count to scipy's `quantile_test` and
    `binom.ppf`.
    """
    tail = Fraction((1 - confidence) / 2)  # the float scipy computes with, exactly
    table: list[tuple[int, int] | None] = []
    k, choose, at_most_k = 0, 1, 1  # n = 0: k = 0, C(0, 0), S_0(0)
    for n in range(size):
        if n:
            at_most_k = 2 * at_most_k - choose
            choose = choose * n // (n - k)
        while at_most_k * tail.denominator < tail.numerator << n:  # P(X <= k) < tail
            choose = choose * (n - k) // (k + 1)
            k += 1
            at_most_k += choose
        low = k - 1  # ppf - 1
        table.append((low, n - 1 - low) if n >= 2 and low >= 0 else None)
    return tuple(table)


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


class StopRule:
    """Which rule ends sampling after each new sample (docs/method.md, "Timing"), or None.

    In order: never before `min_samples`; `ci` once the 95% CI of the median lies within
    +-`target_ci` (relative) of the median; `max_samples`; `max_seconds` once the point
    has used its budget. The samples are kept sorted as they arrive (`bisect.insort`: a
    binary search and one memmove of pointers), so the median and the interval's order
    statistics are looked up, not recomputed: a sample costs the same whether it is the
    5th or the 500th. The ranks of every count this rule can reach are looked up when it
    is made, before the first sample, never between samples.
    """

    def __init__(
        self, *, min_samples: int, max_samples: int, target_ci: float, max_seconds: float
    ) -> None:
        self.min_samples = min_samples
        self.max_samples = max_samples
        self.target_ci = target_ci
        self.max_seconds = max_seconds
        self._ranks = ci_ranks_upto(max(min_samples, max_samples))  # it always ends by then
        self._sorted: list[float] = []

    def add(self, sample: float, elapsed_s: float) -> str | None:
        """Take one more sample (`elapsed_s`: the point's time so far); the rule that ends
        sampling now, or None to take another."""
        ordered = self._sorted
        bisect.insort(ordered, sample)
        count = len(ordered)
        if count < self.min_samples:
            return None
        if self._ci_within(ordered, count):
            return "ci"
        if count >= self.max_samples:
            return "max_samples"
        if elapsed_s >= self.max_seconds:
            return "max_seconds"
        return None

    def _ci_within(self, ordered: list[float], count: int) -> bool:
        ranks = self._ranks[count]
        if ranks is None:
            return False
        half = count // 2
        median = ordered[half] if count % 2 else (ordered[half - 1] + ordered[half]) / 2
        low, high = ordered[ranks[0]], ordered[ranks[1]]
        return max(median - low, high - median) <= self.target_ci * median


@dataclass(frozen=True)
class Spread:
    """How far one run's value moves between runs, in natural log units.

    The value is the log of a row's median time, or the mean of those logs over a
    collective's rows (the log of their geometric mean). `df` says how well `sd` is
    known: the degrees of freedom of its estimate (runs - 1 for a history of runs).
    """

    sd: float
    df: float
    source: str  # where the estimate comes from, for the report


def history_spread(per_run: np.ndarray) -> Spread | None:
    """Between-run spread from a runs x items matrix of log values (NaN: not measured).

    Each item's deviations from its own mean over the runs, pooled. The degrees of
    freedom are runs - 1 however many items there are: the items of one run share that
    run's drift, so they are not independent estimates of it. None below two runs, or
    when the runs agree exactly (no spread observed is not a spread of zero), to within
    the rounding of the logs (ROUNDING: the means of logs that cancel leave about 1e-16).
    """
    values = np.asarray(per_run, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    counts = np.sum(~np.isnan(values), axis=0)
    usable = values[:, counts >= 2]
    runs = int(counts.max(initial=0))
    if runs < 2 or usable.size == 0:
        return None
    deviations = usable - np.nanmean(usable, axis=0)
    dof = int(np.sum(counts[counts >= 2] - 1))
    sd = math.sqrt(float(np.nansum(deviations**2)) / dof)
    if sd < ROUNDING:
        return None
    return Spread(sd, runs - 1, f"{runs} baseline runs")


def pool(*spreads: Spread | None) -> Spread | None:
    """One spread from several estimates (a measured prior and a history): their
    variances averaged with their degrees of freedom as weights, which add up. This is
    the conjugate update of a scaled-inverse-chi-squared prior; with no prior, the
    history alone."""
    known = [s for s in spreads if s is not None]
    if not known:
        return None
    df = sum(s.df for s in known)
    variance = sum(s.df * s.sd**2 for s in known) / df
    return Spread(math.sqrt(variance), df, " + ".join(s.source for s in known))


CONFIDENCE = 0.99  # two-sided: one clean run in 200 looks slower by chance


def family_confidence(tests: int, confidence: float = CONFIDENCE) -> float:
    """Each of `tests` intervals' confidence so that all of them hold together with
    `confidence` (Bonferroni): the gate's false-alarm rate is per gate run, not per row."""
    return 1 - (1 - confidence) / max(tests, 1)


def one_sided(level: float, tests: int = 1) -> float:
    """The two-sided confidence of the intervals whose low ends, above 1, are one-sided
    tests at `level` for `tests` tests together (Bonferroni): 1 - 2 * level / tests."""
    return family_confidence(tests, 1 - 2 * level)


@functools.cache
def t_quantile(probability: float, df: float) -> float:
    """Student t quantile, cached: the gate asks the same few for every row."""
    from scipy.stats import t

    return float(t.ppf(probability, df))


def drift_scale(spread: Spread, baselines: int, currents: int = 1) -> float:
    """The sd of the mean of `currents` runs less the mean of `baselines` runs: both
    sides drift, each run on its own (reruns of the current code judged together)."""
    return spread.sd * math.sqrt(1 / currents + 1 / baselines)


def geomean(values: Sequence[float]) -> float:
    """The geometric mean (ratios and speedups average this way); NaN for none."""
    return float(np.exp(np.log(values).mean())) if len(values) else math.nan
