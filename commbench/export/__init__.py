"""Exporters: every measured row of one or more runs, as a benchmark tracker reads it.

One small module per format (hyperfine's model), each an `Exporter`: a name, a line of
help, and `render`, which turns the measured rows into the file's text. `FORMATS`
(commbench.export.formats) is the one table of them the command reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from commbench.errors import UsageError
from commbench.point import row_label

# (run, row) for every measured row, in the runs' order: what an exporter renders
Measured = list[tuple[Any, Any]]


@dataclass(frozen=True)
class Exporter:
    name: str  # `commbench export --format NAME`
    help: str  # what the file is and what reads it, for --help
    render: Callable[[Measured], str]  # the file's text


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


def measured_rows(runs: list[Any]) -> tuple[Measured, dict[str, int]]:
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
