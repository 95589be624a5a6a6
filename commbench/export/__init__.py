"""Exporters: one small module per output format (hyperfine's model)."""

from __future__ import annotations

import math
from typing import Any

from commbench.errors import UsageError
from commbench.point import row_label

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


def benchmark_name(row: Any) -> str:
    """A measured row's name for benchmark trackers: the row's key in words, stable
    across runs and unique within one (a layout or graph timing other than the default
    is named, since it measures something else)."""
    name = f"{row_label(row)} {row['backend']} world={row['world_size']}"
    if row["layout"] != "contiguous":
        name += f" {row['layout']}"
    if row["cuda_graph"]:
        name += " cuda-graph"
    return name


def measured_rows(runs: list[Any]) -> tuple[list[tuple[Any, Any]], dict[str, int]]:
    """(run, row) for every row that was measured (check `pass`), and how many rows of
    each other check (skipped, fail) were left out. A name two runs share is refused:
    a tracker would take one run's figure for the other's."""
    measured, left_out, seen = [], {}, {}
    for run in runs:
        for _, row in run.results.iterrows():
            if row["check"] != "pass":
                left_out[row["check"]] = left_out.get(row["check"], 0) + 1
                continue
            name = benchmark_name(row)
            if name in seen:
                raise UsageError(
                    f"runs: {str(run.path)!r} repeats {name!r} of {str(seen[name])!r};"
                    " export one of them"
                )
            seen[name] = run.path
            measured.append((run, row))
    return measured, left_out
