"""Steps in a history's level: where it moved, by how much, and whether the latest level is
slower than the best one before it (asv's latest-vs-best), over every run since the pin.

A rolling window follows whatever it is fed: a creep of a few percent per run never stands
out against the runs just before it. So the whole series is tested for steps, by binary
segmentation: a segment of the series is split where the two sides' means differ most (a
two-sample t statistic on the pooled spread within the two sides), when that difference is
beyond chance at `level` shared by every split point the segment offers (Bonferroni), and
each side is searched again. A creep shows as a staircase of steps once it has gone far
enough for the noise between runs to carry it.

The latest segment (which holds the newest runs) is then compared with the fastest
segment before it, once the history's own runs hold it: at least MIN_SEGMENT of them
besides the current runs. A level that only today's runs (and a couple before them) show
is a stretch the machine may leave again: the window's test judges it, on the spread
between runs. When the trend judged such levels too, on a shared virtual machine whose
level moves 1.5x for a few runs at a time, it fired in one A/A history in eight
(docs/gate.md, "Measured power"). The comparison is the ratio of their geometric means,
a Student-t interval on the difference of their means (the spread pooled within every
segment), one-sided at `level` split over the segments it could have been compared with.
The false-alarm rate of this procedure, over every run of 100-run A/A histories, is
measured in benchmarks/history.py (docs/gate.md, "Measured power").

Pure numpy and scipy on a runs x 1 series of log levels.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from commbench.analysis.stats import Spread

MIN_SEGMENT = 3  # runs on each side of a step: one odd run is the window's to judge
# Per gate run, over the aggregates tested (Bonferroni): two-sided for each split found,
# one-sided for the latest level against the best (docs/gate.md, "Measured power")
TREND_LEVEL = 0.01


@dataclass(frozen=True)
class Step:
    """A step found in a series: between run `at - 1` and run `at`."""

    at: int  # index of the first run after the step
    ratio: float  # geometric mean after / before, over the two segments it separates
    low: float  # the ratio's interval at the segmentation's level
    high: float


@dataclass(frozen=True)
class Latest:
    """The latest level against the best (fastest) one before it."""

    ratio: float  # latest / best, of the segments' geometric means
    low: float
    high: float
    best: tuple[int, int]  # the best earlier segment, [start, stop) run indices
    latest: tuple[int, int]
    spread: Spread  # within segments, pooled: what the interval rests on
    slower: bool  # the one-sided test: the interval's low end above 1


def _t_quantile(probability: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(probability, df))


def _best_split(values: np.ndarray, min_size: int) -> tuple[int, float, int] | None:
    """The split of `values` whose sides' means differ most in pooled-sd units:
    (split index, |t|, df), or None where no split leaves `min_size` a side or the values
    do not vary."""
    n = values.size
    if n < 2 * min_size:
        return None
    cumulative = np.cumsum(values)
    squares = np.cumsum(values**2)
    best: tuple[int, float, int] | None = None
    for k in range(min_size, n - min_size + 1):
        left, right = k, n - k
        mean_l, mean_r = cumulative[k - 1] / left, (cumulative[-1] - cumulative[k - 1]) / right
        within = (squares[k - 1] - left * mean_l**2) + (
            squares[-1] - squares[k - 1] - right * mean_r**2
        )
        df = n - 2
        sd = math.sqrt(max(within, 0.0) / df)
        if sd <= 0:
            continue
        statistic = abs(mean_l - mean_r) / (sd * math.sqrt(1 / left + 1 / right))
        if best is None or statistic > best[1]:
            best = (k, statistic, df)
    return best


def find_steps(levels: np.ndarray, level: float, min_size: int = MIN_SEGMENT) -> list[int]:
    """The indices where the series' level steps (each the first run after a step), by
    binary segmentation at `level` per split tested (two-sided, Bonferroni over the
    split points of the segment)."""
    values = np.asarray(levels, dtype=float)
    found: list[int] = []
    todo = [(0, values.size)]
    while todo:
        start, stop = todo.pop()
        best = _best_split(values[start:stop], min_size)
        if best is None:
            continue
        split, statistic, df = best
        candidates = stop - start - 2 * min_size + 1
        if statistic > _t_quantile(1 - level / (2 * candidates), df):
            found.append(start + split)
            todo += [(start, start + split), (start + split, stop)]
    return sorted(found)


def segments(size: int, steps: list[int]) -> list[tuple[int, int]]:
    edges = [0, *steps, size]
    return list(itertools.pairwise(edges))


def pooled_spread(levels: np.ndarray, parts: list[tuple[int, int]]) -> Spread | None:
    """Each run's deviation from its segment's mean, pooled: the between-run spread the
    steps leave (None where no segment has two runs or none varies)."""
    squares, df = 0.0, 0
    for start, stop in parts:
        chunk = levels[start:stop]
        squares += float(((chunk - chunk.mean()) ** 2).sum())
        df += chunk.size - 1
    if df < 1 or squares <= 0:
        return None
    return Spread(math.sqrt(squares / df), df, "the runs since the pin, within their levels")


def describe_steps(levels: np.ndarray, steps: list[int], level: float) -> list[Step]:
    """Each step's ratio (the segment after over the one before) and its interval."""
    parts = segments(levels.size, steps)
    spread = pooled_spread(levels, parts)
    found = []
    for (a, b), (c, d) in itertools.pairwise(parts):
        shift = float(levels[c:d].mean() - levels[a:b].mean())
        half = math.nan
        if spread is not None:
            half = _t_quantile(1 - level / 2, spread.df) * spread.sd
            half *= math.sqrt(1 / (b - a) + 1 / (d - c))
        found.append(Step(c, math.exp(shift), math.exp(shift - half), math.exp(shift + half)))
    return found


def step_records(
    levels: np.ndarray, names: list[str], group: tuple, level: float
) -> tuple[list[int], list[dict]]:
    """The steps of one aggregate's series, as indices and as the reports say them: the
    aggregate, the runs each side, the ratio and its interval."""
    found = find_steps(levels, level)
    said = [
        dict(
            collective=group[0],
            variant=group[1],
            before=names[step.at - 1],
            after=names[step.at],
            ratio=step.ratio,
            low=step.low,
            high=step.high,
        )
        for step in describe_steps(levels, found, level)
    ]
    return found, said


def latest_vs_best(
    levels: np.ndarray, steps: list[int], level: float, current: int
) -> Latest | None:
    """The latest segment against the fastest earlier one, one-sided at `level` split over
    the earlier segments (any of them could have been the best). None without a step, or
    while fewer than MIN_SEGMENT of the history's runs hold the latest level (the last
    `current` levels are the runs being gated)."""
    parts = segments(levels.size, steps)
    latest = parts[-1]
    if len(parts) < 2 or latest[1] - latest[0] - current < MIN_SEGMENT:
        return None
    spread = pooled_spread(levels, parts)
    if spread is None:
        return None
    means = [float(levels[a:b].mean()) for a, b in parts[:-1]]
    best = parts[int(np.argmin(means))]
    shift = float(levels[latest[0] : latest[1]].mean()) - min(means)
    scale = spread.sd * math.sqrt(1 / (best[1] - best[0]) + 1 / (latest[1] - latest[0]))
    half = _t_quantile(1 - level / (len(parts) - 1), spread.df) * scale
    return Latest(
        ratio=math.exp(shift),
        low=math.exp(shift - half),
        high=math.exp(shift + half),
        best=best,
        latest=latest,
        spread=spread,
        slower=shift - half > 0,
    )
