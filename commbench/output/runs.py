"""`commbench runs`: the run directories under a folder, one line each, in the state
every reader finds them in (rundir.state)."""

from __future__ import annotations

import csv
from pathlib import Path

from commbench.errors import UsageError
from commbench.output.tables import Cells
from commbench.rundir.reader import read_meta
from commbench.rundir.schema import META_JSON, RESULTS_CSV
from commbench.rundir.state import COMPLETE, run_state


def _rows_written(path: Path) -> int:
    """Lines results.csv holds, for a run readers refuse (its rows cannot be trusted)."""
    try:
        with (path / RESULTS_CSV).open(newline="") as handle:
            return max(sum(1 for _ in csv.reader(handle)) - 1, 0)
    except OSError:
        return 0


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
        found = run_state(path)
        done = len(found.run.results) if found.run is not None else _rows_written(path)
        planned = "?" if meta.points is None else str(meta.points)
        state = found.state if found.state == COMPLETE else f"{found.state}: {found.detail}"
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
