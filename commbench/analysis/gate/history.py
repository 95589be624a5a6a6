"""A rolling history of baseline runs: the CI's own passing runs, kept over time.

A history made back to back on one node understates the drift between days and nodes;
one grown from the runs CI makes anyway spans both. A run joins when the gate saw no
regression in it (a pass, or a verdict that could not see the asked shift: that is how a
young history grows), and only when it is comparable with the runs already there. The
window keeps the newest `keep` runs that are at most `max_age_days` old, so the history
follows the machines as they change. Files only: never imports torch.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from commbench.errors import ExitCode, UsageError
from commbench.rundir.identity import identity_diff
from commbench.rundir.reader import Run, read_run
from commbench.rundir.schema import RANK_SAMPLES_CSV, RESULTS_CSV

SHORT_HISTORY_S = 3600.0  # a history made within an hour is a history made back to back
# runs: where more stop buying much (docs/gate.md, "What a history buys, and what it cannot")
KEEP = 20
MAX_AGE_DAYS = 30.0  # older runs describe machines and drivers that may be gone
# What a run is admitted on: a gate verdict that saw no regression
RECORDED = (ExitCode.OK, ExitCode.INSUFFICIENT)


class NotComparable(Exception):
    """The run differs from the history in what is measured: name -> (history, run)."""

    def __init__(self, differs: dict[str, tuple]) -> None:
        super().__init__(", ".join(differs))
        self.differs = differs


@dataclass(frozen=True)
class Recorded:
    path: Path  # where the run now lives in the history
    dropped: list[Path]  # runs the window let go
    runs: list[Run]  # the history after it, oldest first


def history_runs(history: Path) -> list[Run]:
    """The runs of a history directory, oldest first (by when each started)."""
    if not history.exists():
        return []
    if not history.is_dir():
        raise UsageError(f"{history}: not a directory")
    runs = [read_run(p) for p in sorted(history.iterdir()) if (p / RESULTS_CSV).exists()]
    return sorted(runs, key=lambda run: started(run))


def started(run: Run) -> datetime:
    """When the run started (a run without the record counts as the oldest)."""
    if not run.meta.started:
        return datetime.min.replace(tzinfo=timezone.utc)
    when = datetime.fromisoformat(run.meta.started)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def history_notes(baselines: list[Run], currents: list[Run]) -> list[str]:
    """What the history lacks: time (runs made back to back understate drift between
    days) and hosts that any current run ran on (node-to-node differences are never in
    it)."""
    notes = []
    times = [started(b) for b in baselines if b.meta.started]
    if len(times) >= 2 and (max(times) - min(times)).total_seconds() < SHORT_HISTORY_S:
        minutes = (max(times) - min(times)).total_seconds() / 60
        notes.append(
            f"the {len(baselines)} baseline runs span {minutes:.0f} minutes: runs made back"
            " to back understate the drift between days and nodes (keep a rolling history)"
        )
    hosts = {h for b in baselines for h in b.meta.hostnames}
    now = {h for c in currents for h in c.meta.hostnames}
    if hosts and now - hosts:
        whose = "the current run's" if len(currents) == 1 else f"the {len(currents)} current runs'"
        notes.append(
            f"{whose} hosts {sorted(now - hosts)} are not in the history"
            f" ({len(hosts)} host(s)): node-to-node differences are not in its spread"
        )
    return notes


def record(
    history: Path,
    run_path: Path,
    keep: int = KEEP,
    max_age_days: float = MAX_AGE_DAYS,
    now: datetime | None = None,
) -> Recorded:
    """Copy the run into the history (not rank_samples.csv: the gate does not read it),
    then keep the window. Refused with NotComparable when the run differs from the
    newest run of the history in an identity field."""
    if keep < 1:
        raise UsageError(f"keep: must be 1 or more (got {keep})")
    if max_age_days <= 0:
        raise UsageError(f"max-age-days: must be positive (got {max_age_days})")
    run = read_run(run_path)
    runs = history_runs(history)
    if runs and (differs := identity_diff(runs[-1].meta, run.meta)):
        raise NotComparable(differs)
    stamp = started(run).strftime("%Y%m%dT%H%M%S")
    target = history / f"run-{stamp}-{run_path.resolve().name}"
    if target.exists():
        raise UsageError(f"{target}: the history already holds this run")
    history.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run_path, target, ignore=shutil.ignore_patterns(RANK_SAMPLES_CSV))
    runs = history_runs(history)
    oldest = (now or datetime.now(timezone.utc)) - timedelta(days=max_age_days)
    kept = [r for r in runs if started(r) >= oldest][-keep:]
    if not any(r.path == target for r in kept):  # the run itself is always kept
        kept = sorted([*kept, next(r for r in runs if r.path == target)], key=started)
    paths = {r.path for r in kept}
    dropped = [r.path for r in runs if r.path not in paths]
    for path in dropped:
        shutil.rmtree(path)
    return Recorded(target, dropped, kept)
