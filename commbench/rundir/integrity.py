"""Whether a run directory is whole: the reader refuses a damaged one in one line naming
the file, the line and the repair, and says when a run is unfinished.

A sweep writes whole lines, one write each, and meta.json atomically: a line cut short,
a samples.csv that lacks samples its results row counts, or a finished run that lacks
rows, come from a crash mid-write, a full disk or a partial copy. Read as if whole they
would turn into NaN rows, a `new` row the gate passes, an empty export. `sweep --resume`
repairs what the run directory can tell (rundir/resume.py drops what is cut and
measures it again).
"""

from __future__ import annotations

import csv
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from commbench.errors import UsageError
from commbench.point import row_label
from commbench.rundir.schema import KEY_COLUMNS, RESULTS_CSV, SAMPLES_CSV

if TYPE_CHECKING:
    from commbench.rundir.meta import RunMeta


class Unfinished(UsageError):
    """A run with no rows yet that has not finished: refused by readers, resumable."""


def resume_command(path: Path, nproc: int | None = None) -> str:
    """The command that finishes (or repairs) the run in `path`, ready to paste."""
    ranks = f" --nproc {nproc}" if nproc is not None else ""
    return f"`commbench sweep --resume {shlex.quote(str(path))}{ranks}`"


def check_whole(path: Path, name: str) -> None:
    """Refuse `path/name` if a line is cut short: fewer fields than its header, or a
    last line without its end (the writer ends every line it writes)."""
    file = path / name
    with file.open("rb") as handle:
        size = handle.seek(0, 2)
        last = handle.seek(size - 1) if size else None
        ends = last is None or handle.read(1) == b"\n"
    if not size:
        raise UsageError(f"{file}: empty (not even its header); {_repair(path)}")
    with file.open(newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows)
        for row in rows:
            if len(row) != len(header):
                raise _cut(path, name, rows.line_num, f"{len(row)} of {len(header)} fields")
        if not ends:
            raise _cut(path, name, rows.line_num, "no end of line")


def check_rows(path: Path, meta: RunMeta, results: Any, samples: Any) -> None:
    """Refuse a run with no rows, a finished run that lacks rows, and a samples.csv
    that lacks samples its results rows count."""
    if results.empty:
        if meta.finished:
            raise UsageError(
                f"{path / RESULTS_CSV}: no rows, though meta.json says the run finished;"
                f" {_repair(path)}"
            )
        unfinished = incomplete(meta, path, 0)
        if unfinished:
            raise Unfinished(unfinished)
        raise UsageError(f"{path / RESULTS_CSV}: no rows")
    if meta.finished and meta.points and len(results) < meta.points:
        raise UsageError(
            f"{path / RESULTS_CSV}: holds {len(results)} of the {meta.points} points meta.json"
            f" says the run finished; {_repair(path)}"
        )
    counted = samples.groupby(KEY_COLUMNS).size().rename("counted").reset_index()
    rows = results[[*KEY_COLUMNS, "samples"]].reset_index()
    merged = rows[rows["samples"].fillna(0) > 0].merge(counted, on=KEY_COLUMNS, how="left")
    merged["counted"] = merged["counted"].fillna(0)
    short = merged[merged["counted"] != merged["samples"]]
    if not short.empty:
        first = short.iloc[0]
        line = int(first["index"]) + 2  # the header is line 1
        raise UsageError(
            f"{path / SAMPLES_CSV}: holds {int(first['counted'])} of the"
            f" {int(first['samples'])} samples {RESULTS_CSV} line {line} counts"
            f" ({row_label(results.loc[first['index']])}); {_repair(path)}"
        )


def incomplete(meta: RunMeta, path: Path, rows: int) -> str | None:
    """What an unfinished run lacks and how to finish it; None for a finished run, or
    one whose meta.json does not say how many points it planned."""
    if meta.stopped is None and (meta.finished or meta.points is None):
        return None
    planned = f" of {meta.points}" if meta.points else ""
    if meta.stopped:
        why = f"stopped {meta.stopped.at}: {meta.stopped.reason}"
    else:
        why = "not finished: still running, or killed without a word"
    return (
        f"{path} is incomplete: {rows}{planned} points finished ({why});"
        f" {resume_command(path)} measures the rest"
    )


def _cut(path: Path, name: str, line: int, how: str) -> UsageError:
    return UsageError(f"{path / name} line {line}: cut short ({how}); {_repair(path)}")


def _repair(path: Path) -> str:
    return f"{resume_command(path)} drops what is damaged and measures it again"
