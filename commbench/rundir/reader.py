"""The one reader of run directories: report, compare, gate, plot, export, `--resume` and
`commbench.load_run` all load through it.

Any schema this commbench knows reads in this schema's shape: meta.json through
runmeta's `update_to_N` steps into `RunMeta`, the CSV files through `ADDED_COLUMNS`. A
run from a newer commbench, or a file that is not what commbench writes, is refused in
one line naming the file and the problem. Never imports torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from commbench.errors import UsageError, describe_invalid
from commbench.rundir.integrity import check_rows, check_whole, incomplete
from commbench.rundir.schema import (
    META_JSON,
    RESULT_COLUMNS,
    RESULTS_CSV,
    SAMPLE_COLUMNS,
    SAMPLES_CSV,
    SCHEMA_VERSION,
)

if TYPE_CHECKING:
    from commbench.rundir.meta import RunMeta

# What a run written before a schema step means by the columns that step added: applied
# to every older file on reading (asv's update_to_N, one table; meta.json's steps are
# runmeta.UPDATES). A column is filled only where it is missing (runs of one schema
# written before a column was added hold it too).
ADDED_COLUMNS: dict[int, dict[str, Any]] = {
    2: {"vocab": 0, "padded_vocab": 0, "temp_mem_bytes": float("nan")},
    3: {"layout": "contiguous", "cuda_graph": False},  # every group was contiguous, eager
    4: {  # before all_to_all, no row was routed
        "experts": 0,
        "topk": 0,
        "skew": 0.0,
        "routed_bytes": math.nan,
        "padded_bytes": math.nan,
        "imbalance": math.nan,
    },
}


@dataclass(frozen=True)
class Run:
    """A run directory as consumers see it: results and samples (pandas DataFrames, in
    this schema's columns whatever schema wrote them) and meta.json as `RunMeta`."""

    path: Path
    results: Any  # pandas.DataFrame
    samples: Any  # pandas.DataFrame
    meta: RunMeta

    @property
    def label(self) -> str:
        return self.meta.label or self.path.name

    @property
    def incomplete(self) -> str | None:
        """What an unfinished run lacks and how to finish it (None when finished)."""
        return incomplete(self.meta, self.path, len(self.results))

    @property
    def schema_version(self) -> int:
        """The schema the files were written in."""
        return self.meta.schema_version


def read_meta(path: Path) -> RunMeta:
    """A run's meta.json in this schema's shape, refused in one line if missing,
    unreadable, not what commbench writes, or from a newer commbench (whose files this one
    cannot know how to read)."""
    from pydantic import ValidationError  # pydantic only where a run is read

    from commbench.rundir.meta import RunMeta, upgrade, written_schema

    if not path.is_dir():
        raise UsageError(f"{path}: not a run directory")
    try:
        data = json.loads((path / META_JSON).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: not a commbench run (no {META_JSON})") from None
    except json.JSONDecodeError as err:
        raise UsageError(
            f"{path / META_JSON} line {err.lineno}: cut short or not JSON ({err.msg});"
            " commbench writes it whole, so this copy is damaged: copy the run again"
        ) from None
    except (OSError, ValueError) as err:
        raise UsageError(f"{path / META_JSON}: unreadable: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path / META_JSON}: unreadable: not a JSON object")
    version = written_schema(data)
    if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
        raise UsageError(
            f"{path}: written by a newer commbench (schema {version!r}; this one reads 1 to"
            f" {SCHEMA_VERSION})"
        )
    if version < 1:
        raise UsageError(f"{path / META_JSON}: schema_version: must be 1 or more (got {version})")
    try:
        return RunMeta.model_validate(upgrade(data))
    except ValidationError as err:
        raise UsageError(describe_invalid(err, str(path / META_JSON))) from None


def _upgrade_columns(frame: Any, columns: list[str]) -> Any:
    """`frame` with every column an older schema lacked, as that schema meant it."""
    missing = {
        name: value
        for added in ADDED_COLUMNS.values()
        for name, value in added.items()
        if name in columns and name not in frame.columns
    }
    return frame.assign(**missing)


def read_run(path: Path) -> Run:
    """Read a run directory of any schema this commbench knows, in this schema's columns,
    with one-line errors naming the file and the problem."""
    import pandas as pd

    meta = read_meta(path)
    try:
        for name in (RESULTS_CSV, SAMPLES_CSV):
            check_whole(path, name)
        results = pd.read_csv(path / RESULTS_CSV, dtype={"note": str, "stop": str})
        samples = pd.read_csv(path / SAMPLES_CSV)
    except FileNotFoundError as err:
        raise UsageError(f"{path}: missing {Path(err.filename).name}") from None
    except OSError as err:  # a directory where a file should be, no permission, ...
        raise UsageError(f"{err.filename}: unreadable: {err.strerror}") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise UsageError(f"{path}: unreadable results: {str(err).splitlines()[0]}") from None
    results = _upgrade_columns(results, RESULT_COLUMNS)
    samples = _upgrade_columns(samples, SAMPLE_COLUMNS)
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise UsageError(f"{path / RESULTS_CSV}: missing columns {missing}")
    results["note"] = results["note"].fillna("")
    check_rows(path, meta, results, samples)
    return Run(path, results, samples, meta)


def measured(results: Any) -> Any:
    """The rows that were measured (check `pass`): a failed or skipped row has no time."""
    return results[results["check"] == "pass"]
