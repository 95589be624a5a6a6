"""`commbench runs`: the run directories under a folder, one line each, from their
meta.json (read by rundir.reader) and the rows their results.csv holds."""

from __future__ import annotations

import csv
from pathlib import Path

from commbench.errors import UsageError
from commbench.output.tables import Cells
from commbench.rundir.reader import read_meta
from commbench.rundir.schema import META_JSON, RESULTS_CSV


def _rows_written(path: Path) -> int:
    """Points recorded so far: results.csv's rows (measured, skipped or failed)."""
    try:
        with (path / RESULTS_CSV).open(newline="") as handle:
            return max(sum(1 for _ in csv.reader(handle)) - 1, 0)
    except OSError:
        return 0


def _state(path: Path, done: int, planned: int | None, finished: str | None) -> str:
    if finished and (planned is None or done >= planned):
        return "complete"
    return f"unfinished: commbench sweep --resume {path} measures the rest"


def run_list(root: Path) -> Cells:
    """Every run directory under `root` (a directory with a meta.json), oldest first; a
    run whose meta.json cannot be read is listed with the reason."""
    if not root.is_dir():
        raise UsageError(f"dir: {str(root)!r} is not a directory")
    rows = []
    for meta_file in sorted(root.rglob(META_JSON)):
        path = meta_file.parent
        name = str(path.relative_to(root)) if path != root else str(path)
        try:
            meta = read_meta(path)
        except UsageError as err:
            rows.append(("", [name, f"unreadable: {err}", "", "", "", "", ""]))
            continue
        done = _rows_written(path)
        planned = "?" if meta.points is None else str(meta.points)
        state = _state(path, done, meta.points, meta.finished)
        if meta.stopped:
            state = f"stopped: {meta.stopped.reason}; {state}"
        started = (meta.started or "").replace("T", " ").split("+")[0]
        rows.append(
            (
                started,
                [
                    name,
                    state,
                    meta.label or "",
                    started,
                    meta.backend,
                    str(meta.world_size),
                    f"{done}/{planned}",
                ],
            )
        )
    rows.sort(key=lambda row: row[0])
    return Cells(
        ["run", "state", "label", "started (UTC)", "backend", "world", "points"],
        [cells for _, cells in rows],
        left=5,
    )
