"""A history of baseline runs for the gate: a rolling window of the CI's own clean runs, a
pinned reference, the runs of unconfirmed alarms kept apart, and the whole series.

A history made back to back on one node understates the drift between days and nodes;
one grown from the runs CI makes anyway spans both. But a rolling window follows whatever
it is fed: a creep of a few percent per run never stands out against the runs just before
it. So a history holds, beside the window (the newest `keep` runs, directly in the
directory, what the gate judges today's noise on):

- `pinned/`: the reference the project accepted (the seed baseline, or runs pinned later by
  hand with a reason, `commbench history pin`); every gate judges the cumulative shift
  against it;
- `quarantine/`: the runs of an alarm a rerun did not confirm: kept and listed, never
  judged against (an outlier in the window would widen its spread; dropped silently, a
  real regression that the rerun happened to miss would go unseen);
- `series.csv`: every row's median of every run the history ever held, so the trend test
  (trend.py) and the history page see the whole series after runs leave the window;
- `history.json`: each run's identity (a digest of its meta.json and rows: a copy is the
  same run),
  name, state, labels and versions, and the pin with who pinned it, when and why.

A run joins only when it is clean and comparable, and never twice. Files only: never
imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from commbench.errors import ExitCode, UsageError
from commbench.rundir.identity import identity_diff
from commbench.rundir.reader import Run, measured, read_run
from commbench.rundir.schema import KEY_COLUMNS, RANK_SAMPLES_CSV, RESULTS_CSV

SHORT_HISTORY_S = 3600.0  # a history made within an hour is a history made back to back
# runs: where more stop buying much (docs/gate.md, "What a history buys, and what it cannot")
KEEP = 20
HISTORY_JSON = "history.json"
SERIES_CSV = "series.csv"
PINNED = "pinned"
QUARANTINE = "quarantine"
# Where CI systems say which commit a job runs, for the history page
COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "GIT_COMMIT")

State = Literal["window", "dropped", "quarantined", "pinned"]


class NotComparable(Exception):
    """The run differs from the history in what is measured: name -> (history, run)."""

    def __init__(self, differs: dict[str, tuple]) -> None:
        super().__init__(", ".join(differs))
        self.differs = differs


class Entry(BaseModel):
    """One run the history holds or held."""

    model_config = ConfigDict(extra="forbid")

    id: str  # a digest of its meta.json and rows (`run_id`)
    name: str  # its directory's name in the history
    state: State  # window: judged against; dropped: left the window (its medians kept);
    # quarantined: an unconfirmed alarm's; pinned: in the pin only
    started: str
    recorded: str  # when it joined
    label: str = ""
    commit: str = ""
    torch: str = ""
    nccl: str = ""
    reason: str = ""  # why quarantined


class Pin(BaseModel):
    """The reference the project accepted: which runs, who pinned them, when and why."""

    model_config = ConfigDict(extra="forbid")

    runs: list[str]  # ids
    names: list[str]  # their directories in pinned/
    reason: str
    by: str
    at: str


class Ledger(BaseModel):
    """history.json."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    can_see: bool = False  # a gate once saw the asked shift: exit 4 never joins again
    pin: Pin | None = None
    earlier_pins: list[Pin] = []
    runs: list[Entry] = []

    def holding(self, run_id: str) -> Entry | None:
        return next((entry for entry in self.runs if entry.id == run_id), None)


@dataclass(frozen=True)
class Recorded:
    path: Path  # where the run now lives in the history
    dropped: list[Path]  # runs the window let go
    runs: list[Run]  # the window after it, oldest first


def run_id(run: Run) -> str:
    """The run's identity: a digest of its meta.json and its rows as read (a copy of a
    run, under any name, is the same run; two sweeps never share a start time, a host and
    every median)."""
    text = json.dumps(run.meta.model_dump(mode="json"), sort_keys=True)
    text += run.results.to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def started(run: Run) -> datetime:
    """When the run started (a run without the record counts as the oldest)."""
    return when(run.meta.started)


def when(text: str | None) -> datetime:
    """An ISO time as recorded (UTC where it says no zone; the oldest where it is empty)."""
    if not text:
        return datetime.min.replace(tzinfo=timezone.utc)
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _now(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")


def commit_from_env(environ: dict[str, str] | None = None) -> str:
    """The commit the CI job runs, where its CI says it ("" where none does)."""
    env = os.environ if environ is None else environ
    return next((env[name] for name in COMMIT_VARIABLES if env.get(name)), "")


def _runs_in(folder: Path) -> list[Run]:
    if not folder.is_dir():
        return []
    runs = [read_run(p) for p in sorted(folder.iterdir()) if (p / RESULTS_CSV).exists()]
    return sorted(runs, key=started)


def history_runs(history: Path) -> list[Run]:
    """The window: the runs directly in a history directory, oldest first."""
    if not history.exists():
        return []
    if not history.is_dir():
        raise UsageError(f"{history}: not a directory")
    return _runs_in(history)


def pinned_runs(history: Path) -> list[Run]:
    return _runs_in(history / PINNED)


def quarantined_runs(history: Path) -> list[Run]:
    return _runs_in(history / QUARANTINE)


def is_history(path: Path) -> bool:
    """A directory the history commands keep (history.json), not a run directory."""
    return (path / HISTORY_JSON).is_file()


def read_ledger(history: Path) -> Ledger:
    """history.json, or for a history that predates it, one made from its run directories
    (written back by the first command that changes the history)."""
    path = history / HISTORY_JSON
    if not path.exists():
        runs = history_runs(history)
        return Ledger(runs=[_entry(run, run.path.name, "window", _now()) for run in runs])
    try:
        return Ledger.model_validate_json(path.read_text())
    except (OSError, ValidationError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"{path}: unreadable: {first}") from None


def _write_ledger(history: Path, ledger: Ledger) -> None:
    from commbench.rundir.writer import write_atomic

    history.mkdir(parents=True, exist_ok=True)
    write_atomic(history / HISTORY_JSON, ledger.model_dump_json(indent=1) + "\n")


def _entry(run: Run, name: str, state: State, recorded: str, commit: str = "") -> Entry:
    versions = run.meta.versions
    return Entry(
        id=run_id(run),
        name=name,
        state=state,
        started=run.meta.started or "",
        recorded=recorded,
        label=run.meta.label or "",
        commit=commit,
        torch=versions.torch or "",
        nccl=versions.nccl_runtime or "",
    )


def read_series(history: Path) -> pd.DataFrame:
    """series.csv: every held run's measured rows (id, the key, time_us); empty where the
    history has none yet (a history that predates it reads its window's runs)."""
    path = history / SERIES_CSV
    if path.exists():
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    frames = [_series_rows(run) for run in history_runs(history)]
    return pd.concat(frames, ignore_index=True) if frames else _series_rows(None)


def _series_rows(run: Run | None) -> pd.DataFrame:
    if run is None:
        return pd.DataFrame(columns=["id", *KEY_COLUMNS, "time_us"])
    rows = measured(run.results)[[*KEY_COLUMNS, "time_us"]].copy()
    rows.insert(0, "id", run_id(run))
    return rows


def _append_series(history: Path, runs: list[Run], ledger: Ledger) -> None:
    """Add the runs' rows to series.csv (written whole the first time, with every other run
    the ledger already holds)."""
    path = history / SERIES_CSV
    if not path.exists():
        adding = {run_id(run) for run in runs}
        held = {entry.id for entry in ledger.runs} - adding
        before = read_series(history)
        before = before[before["id"].isin(held)]
        before.to_csv(path, index=False)
    pd.concat([_series_rows(run) for run in runs]).to_csv(path, mode="a", header=False, index=False)


def _refuse_held(ledger: Ledger, run: Run, history: Path) -> None:
    held = ledger.holding(run_id(run))
    if held is not None:
        raise UsageError(
            f"run: {str(run.path)!r} is already in {str(history)!r} as {held.name} ({held.state});"
            " a run counted twice would narrow the spread"
        )


def _refuse_not_comparable(history: Path, run: Run) -> None:
    reference = [*history_runs(history), *pinned_runs(history)]
    if reference and (differs := identity_diff(reference[-1].meta, run.meta)):
        raise NotComparable(differs)


def _copy_in(run: Run, folder: Path) -> Path:
    target = folder / f"run-{started(run):%Y%m%dT%H%M%S}-{run.path.resolve().name}"
    if target.exists():
        target = target.with_name(f"{target.name}-{run_id(run)[:6]}")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run.path, target, ignore=shutil.ignore_patterns(RANK_SAMPLES_CSV))
    return target


def record(
    history: Path,
    run_path: Path,
    keep: int = KEEP,
    max_age_days: float | None = None,
    now: datetime | None = None,
    commit: str = "",
) -> Recorded:
    """Copy the run into the window (not rank_samples.csv: the gate does not read it), its
    rows into the series, then keep the window: the newest `keep` runs by count (a
    history CI feeds weekly keeps as many runs as one fed hourly), and with
    `max_age_days` none older than that. Refused with NotComparable when the run differs
    from the history's newest run in an identity field, and with a UsageError when the
    history holds it already."""
    if keep < 1:
        raise UsageError(f"keep: must be 1 or more (got {keep})")
    if max_age_days is not None and max_age_days <= 0:
        raise UsageError(f"max-age-days: must be positive (got {max_age_days})")
    run = read_run(run_path)
    ledger = read_ledger(history)
    _refuse_held(ledger, run, history)
    _refuse_not_comparable(history, run)
    target = _copy_in(run, history)
    ledger.runs.append(_entry(run, target.name, "window", _now(now), commit))
    _append_series(history, [run], ledger)
    runs = history_runs(history)
    kept = runs[-keep:]
    if max_age_days is not None:
        oldest = (now or datetime.now(timezone.utc)) - timedelta(days=max_age_days)
        kept = [r for r in kept if started(r) >= oldest]
    if not any(r.path == target for r in kept):  # the run itself is always kept
        kept = sorted([*kept, next(r for r in runs if r.path == target)], key=started)
    paths = {r.path for r in kept}
    dropped = [r.path for r in runs if r.path not in paths]
    for path in dropped:
        shutil.rmtree(path)
    names = {path.name for path in dropped}
    for entry in ledger.runs:
        if entry.state == "window" and entry.name in names:
            entry.state = "dropped"
    _write_ledger(history, ledger)
    return Recorded(target, dropped, kept)


def quarantine(
    history: Path, run_paths: list[Path], reason: str, now: datetime | None = None, commit: str = ""
) -> list[Path]:
    """Keep the runs apart (`quarantine/`), listed and in the series, never judged against."""
    ledger = read_ledger(history)
    kept = []
    for run_path in run_paths:
        run = read_run(run_path)
        if ledger.holding(run_id(run)) is not None:
            continue  # already held (in the window, say): nothing to keep apart
        target = _copy_in(run, history / QUARANTINE)
        entry = _entry(run, target.name, "quarantined", _now(now), commit)
        ledger.runs.append(entry.model_copy(update={"reason": reason}))
        _append_series(history, [run], ledger)
        kept.append(target)
    _write_ledger(history, ledger)
    return kept


def pin(history: Path, runs: list[Path], reason: str, by: str, now: datetime | None = None) -> Pin:
    """Make `runs` (run directories, or names of the window's runs) the history's pinned
    reference, replacing the pin before it (kept in history.json, never its runs)."""
    if not reason.strip():
        raise UsageError("reason: say why this is the level the project accepts (--reason)")
    if not runs:
        raise UsageError("runs: pin at least one run")
    ledger = read_ledger(history)
    found = []
    for given in runs:
        path = given if given.exists() else history / given
        if not (path / RESULTS_CSV).exists():
            raise UsageError(
                f"runs: {str(given)!r} is neither a run directory nor a run in the history"
            )
        found.append(read_run(path))
    ids = [run_id(run) for run in found]
    if len(set(ids)) < len(ids):
        raise UsageError("runs: the same run given twice")
    for run in found:
        _refuse_not_comparable(history, run)
    folder = history / PINNED
    staged = history / f".{PINNED}.new"
    shutil.rmtree(staged, ignore_errors=True)
    names = [_copy_in(run, staged).name for run in found]
    shutil.rmtree(folder, ignore_errors=True)
    staged.rename(folder)
    for run, name in zip(found, names, strict=True):
        if ledger.holding(run_id(run)) is None:
            ledger.runs.append(_entry(run, name, "pinned", _now(now)))
            _append_series(history, [run], ledger)
    if ledger.pin is not None:
        ledger.earlier_pins.append(ledger.pin)
    ledger.pin = Pin(runs=ids, names=names, reason=reason.strip(), by=by, at=_now(now))
    _write_ledger(history, ledger)
    return ledger.pin


def since_pin(history: Path, ledger: Ledger | None = None) -> list[Entry]:
    """The runs the trend test reads, oldest first: every run the history held since the
    earliest pinned run started (the pinned runs included), but the quarantined."""
    ledger = ledger or read_ledger(history)
    if ledger.pin is None:
        return []
    pinned = [e for e in ledger.runs if e.id in ledger.pin.runs]
    start = min(when(e.started) for e in pinned) if pinned else datetime.min
    chosen = [e for e in ledger.runs if e.state != "quarantined" and when(e.started) >= start]
    return sorted(chosen, key=lambda e: when(e.started))


def admits(history: Path, code: int, young: bool) -> bool:
    """Whether a gate verdict lets its current runs into the window: a pass; a verdict
    that could not see the asked shift only while the history is too young to (`young`:
    more runs would let it see it) and no gate on it ever could; never a regression or a
    run not comparable. A pass (every test saw the asked shift) marks the history as one
    that can."""
    ledger = read_ledger(history)
    if code == ExitCode.OK and not ledger.can_see:
        ledger.can_see = True
        _write_ledger(history, ledger)
    return code == ExitCode.OK or (code == ExitCode.INSUFFICIENT and young and not ledger.can_see)


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
