"""Figures as table cells, one rule for every table, markdown and JUnit text: empty where
a figure could not be computed (NaN), `inf` where it is unbounded, powers of ten past
what a reader can take in."""

from __future__ import annotations

import math

HUGE_RATIO = 1e4  # beyond this a ratio is shown in powers of ten


def number(value: float, spec: str) -> str:
    """A figure for a table cell; empty where it could not be computed (NaN)."""
    return "" if value is None or math.isnan(value) else f"{value:{spec}}"


def ratio(value: float, spec: str) -> str:
    """A ratio for a cell: in full up to HUGE_RATIO, then in powers of ten (an interval
    from one degree of freedom can end at 1e190), infinite as such."""
    if math.isinf(value):
        return "inf"
    return f"{value:.1e}" if value >= HUGE_RATIO else f"{value:{spec}}"


def interval(low: float, high: float) -> str:
    """An interval's cell; empty where there is none (too little data to judge)."""
    return "" if math.isnan(low) else f"{ratio(low, '.3f')} to {ratio(high, '.3f')}"


def multiple(value: float) -> str:
    """A shift as a factor (1.25x); empty where it could not be computed, `inf` where no
    shift would show."""
    if math.isnan(value) or math.isinf(value):
        return number(value, ".2f")
    return f"{ratio(value, '.2f')}x"
