"""The trend test: steps found where they were planted, at the right run and size, rarely
in series that never moved, and the latest level judged against the best before it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from commbench.analysis.gate.trend import (
    MIN_SEGMENT,
    describe_steps,
    find_steps,
    latest_vs_best,
    segments,
)

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor


def _series(rng: np.random.Generator, n: int, steps: dict[int, float], sd: float = 0.01):
    """n runs' log levels with noise `sd`, the level moving by log(ratio) at each step."""
    levels = rng.normal(0, sd, n)
    for at, ratio in steps.items():
        levels[at:] += math.log(ratio)
    return levels


def test_a_planted_step_is_found_at_its_run_with_its_size() -> None:
    rng = np.random.default_rng(0)
    levels = _series(rng, 40, {25: 1.05})  # five sds
    found = find_steps(levels, 0.01)
    assert found == [25]
    (step,) = describe_steps(levels, found, 0.01)
    assert step.at == 25 and step.low < 1.05 < step.high and 1.03 < step.ratio < 1.07


def test_two_steps_and_a_staircase_are_found() -> None:
    rng = np.random.default_rng(1)
    assert find_steps(_series(rng, 60, {20: 1.06, 40: 1.06}), 0.01) == [20, 40]
    creep = np.log(1.01) * np.arange(60) + rng.normal(0, 0.01, 60)  # 1% a run
    assert len(find_steps(creep, 0.01)) >= 3


def test_a_series_that_never_moved_rarely_shows_a_step() -> None:
    """200 A/A series of 100 runs each, tested whole: a step in about `level` of them
    (binary segmentation at 1%: at most 2% here, seeded)."""
    rng = np.random.default_rng(2)
    fired = sum(bool(find_steps(rng.normal(0, 0.01, 100), 0.01)) for _ in range(200))
    assert fired <= 4


def test_one_odd_run_is_not_a_step() -> None:
    """A step needs MIN_SEGMENT runs on each side: the newest run alone is the window's."""
    levels = np.zeros(30) + np.random.default_rng(3).normal(0, 0.01, 30)
    levels[-1] += math.log(1.5)
    assert find_steps(levels, 0.01) == []
    levels[-MIN_SEGMENT:] += math.log(1.5)
    assert find_steps(levels, 0.01) == [30 - MIN_SEGMENT]


def test_the_latest_level_against_the_best_before_it() -> None:
    """Up 8%, back down, up 6%: the latest is judged against the best earlier segment
    (the lowest), one-sided, split over the three it could have been."""
    rng = np.random.default_rng(4)
    levels = _series(rng, 70, {20: 1.08, 35: 1 / 1.08, 50: 1.06})
    found = find_steps(levels, 0.01)
    assert found == [20, 35, 50]
    latest = latest_vs_best(levels, found, 0.01, current=1)
    assert latest is not None and latest.slower
    assert latest.best in ((0, 20), (35, 50)) and latest.latest == (50, 70)
    assert 1.04 < latest.ratio < 1.08 and latest.low > 1
    assert segments(70, found) == [(0, 20), (20, 35), (35, 50), (50, 70)]
    assert latest_vs_best(levels, [], 0.01, current=1) is None  # no step: nothing to judge
    faster = latest_vs_best(_series(rng, 40, {20: 0.9}), [20], 0.01, current=1)
    assert faster is not None and not faster.slower and faster.high < 1


def test_the_latest_level_is_judged_once_the_historys_own_runs_hold_it() -> None:
    """A 1.5x level that only the current run and two recorded runs show is a stretch the
    window judges; with a third recorded run in it, the trend judges it (and finds it
    slower). Two current runs need the same three recorded runs besides them."""
    rng = np.random.default_rng(5)
    held = _series(rng, 33, {30: 1.5})  # 30 runs at the best level, 3 slower
    assert find_steps(held, 0.01) == [30]
    assert latest_vs_best(held, [30], 0.01, current=1) is None
    assert latest_vs_best(held, [30], 0.01, current=0) is not None  # three recorded runs
    longer = _series(rng, 34, {30: 1.5})
    latest = latest_vs_best(longer, [30], 0.01, current=1)
    assert latest is not None and latest.slower and latest.latest == (30, 34)
    assert latest_vs_best(longer, [30], 0.01, current=2) is None
