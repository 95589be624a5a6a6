"""commbench: list vs tensor collectives for data-parallel attention, measured honestly.

For notebooks: `load_run(path)` reads one run directory, `load_runs(paths)` several
(pandas, no torch). `import commbench` itself imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from commbench.rundir.reader import Run

__version__ = "0.1.0"


def load_run(path: str | PathLike[str]) -> Run:
    """A run directory as `Run`: `.results` (one row per point) and `.samples` (one row
    per sample) as pandas DataFrames in the current schema's columns, whichever schema
    wrote them, and `.meta`, meta.json as `commbench.rundir.meta.RunMeta`. Raises
    `commbench.errors.UsageError` with a one-line reason for a directory it cannot read.
    Never imports torch."""
    from commbench.rundir.reader import read_run

    return read_run(Path(path))


@dataclass(frozen=True)
class Runs:
    """Several runs stacked: `results` and `samples` with a `run` column first (the
    run's label, or its path where labels repeat), `meta` by the same names."""

    results: Any  # pandas.DataFrame
    samples: Any  # pandas.DataFrame
    meta: dict[str, Any]  # run name -> RunMeta


def load_runs(paths: Iterable[str | PathLike[str]]) -> Runs:
    """`load_run` for each path, stacked into one pair of DataFrames with a `run` column."""
    import pandas as pd

    from commbench.errors import UsageError

    runs = [load_run(path) for path in paths]
    if not runs:
        raise UsageError("paths: no run directories given")
    names = [run.label for run in runs]
    if len(set(names)) < len(names):
        names = [str(run.path) for run in runs]

    def stack(frames: list[Any]) -> Any:
        return pd.concat(
            [frame.assign(run=name) for name, frame in zip(names, frames, strict=True)],
            ignore_index=True,
        ).pipe(lambda f: f[["run", *(c for c in f.columns if c != "run")]])

    return Runs(
        results=stack([run.results for run in runs]),
        samples=stack([run.samples for run in runs]),
        meta={name: run.meta for name, run in zip(names, runs, strict=True)},
    )
