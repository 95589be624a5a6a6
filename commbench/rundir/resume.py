"""What an interrupted run already holds, so `sweep --resume` measures only the rest.

A point is finished when its row is in results.csv. A round of an unfinished point is
complete when its record is in rounds.csv, which is written after that round's samples,
and every sample it counts is there: samples without a record (the run died between the
files) are dropped, and so is a torn last line; a finished point whose samples were cut
(a partial copy) is measured again. Only standard-library csv here: resuming must not need pandas.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commbench.config.settings import UNHASHED
from commbench.errors import UsageError
from commbench.rundir import reader as runreader
from commbench.rundir.meta import RunMeta
from commbench.rundir.schema import (
    KEY_COLUMNS,
    RANK_SAMPLES_CSV,
    RESULTS_CSV,
    ROUNDS_CSV,
    SAMPLES_CSV,
    SCHEMA_VERSION,
)
from commbench.rundir.writer import write_atomic

Key = tuple[str, ...]  # KEY_COLUMNS' values as written (strings)
RoundId = tuple[Key, int]


@dataclass
class RecordedRound:
    """One complete round of one point: what `timing.Measurement` held."""

    iters: int
    stop: str
    samples_us: list[float] = field(default_factory=list)  # the slowest rank's, per sample
    rank_samples_us: list[list[float]] = field(default_factory=list)  # [sample][rank]


@dataclass
class RunProgress:
    meta: RunMeta
    finished: dict[Key, dict[str, str]]  # results.csv rows by key
    rounds: dict[RoundId, RecordedRound]  # complete rounds of unfinished points


def row_key(row: dict[str, Any]) -> Key:
    return tuple(str(row[column]) for column in KEY_COLUMNS)


def read_meta(path: Path) -> RunMeta:
    """The run's meta.json, for `--resume`: the one reader's, and only in this schema
    (a run of another schema cannot be continued: its rows would mix two formats)."""
    try:
        meta = runreader.read_meta(path)
    except UsageError as err:
        raise UsageError(f"resume: {err}") from None
    if meta.schema_version != SCHEMA_VERSION:
        raise UsageError(
            f"resume: {str(path)!r} was written by another commbench (schema"
            f" {meta.schema_version}, this one writes {SCHEMA_VERSION})"
        )
    return meta


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline: the rest of a write that never finished."""
    with path.open("rb+") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            handle.truncate(end)


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        _cut_torn_tail(path)
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError as err:
        raise UsageError(f"resume: {path}: unreadable: {err.strerror}") from None


def _keep_rows(
    path: Path, rows: list[dict[str, str]], keep: Callable[[dict[str, str]], bool]
) -> list[dict[str, str]]:
    """Rewrite `path` (atomically) with the rows to `keep` only."""
    kept = [row for row in rows if keep(row)]
    if len(kept) < len(rows):
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
        write_atomic(path, text.getvalue())
    return kept


def round_id(row: dict[str, str]) -> RoundId:
    return row_key(row), int(row["round"])


def recover(path: Path) -> RunProgress:
    """Read an interrupted or damaged run and repair its files to what is complete (rank
    0 only): a round is complete when its record is in rounds.csv and all the samples it
    counts are in samples.csv; a point is finished when its results row is there and each
    of its recorded rounds is complete. What is not is dropped, and measured again."""
    meta = read_meta(path)
    samples = _read_rows(path / SAMPLES_CSV)
    counted = Counter(round_id(row) for row in samples)
    records = _read_rows(path / ROUNDS_CSV)
    complete = {round_id(row) for row in records if counted[round_id(row)] == int(row["samples"])}
    broken = {row_key(row) for row in records if round_id(row) not in complete}
    results = _keep_rows(
        path / RESULTS_CSV, _read_rows(path / RESULTS_CSV), lambda row: row_key(row) not in broken
    )
    finished = {row_key(row): row for row in results}
    # every round recorded but no row (cut off, or the run died before writing it): the
    # last round is measured again, after which the point is final
    recorded = Counter(key for key, _ in complete if key not in finished)
    complete -= {(key, meta.rounds - 1) for key, n in recorded.items() if n >= meta.rounds}
    records = _keep_rows(path / ROUNDS_CSV, records, lambda row: round_id(row) in complete)
    rounds = {
        round_id(row): RecordedRound(int(row["iters"]), row["stop"])
        for row in records
        if row_key(row) not in finished
    }
    for row in _keep_rows(path / SAMPLES_CSV, samples, lambda row: round_id(row) in complete):
        if (rid := round_id(row)) in rounds:
            rounds[rid].samples_us.append(float(row["time_us"]))
    by_sample: dict[RoundId, dict[int, dict[int, float]]] = {}
    rank_rows = _keep_rows(
        path / RANK_SAMPLES_CSV,
        _read_rows(path / RANK_SAMPLES_CSV),
        lambda row: round_id(row) in complete,
    )
    for row in rank_rows:
        if (rid := round_id(row)) in rounds:
            sample = by_sample.setdefault(rid, {}).setdefault(int(row["sample"]), {})
            sample[int(row["rank"])] = float(row["time_us"])
    for rid, by_rank in by_sample.items():
        rounds[rid].rank_samples_us = [
            [times[rank] for rank in sorted(times)] for _, times in sorted(by_rank.items())
        ]
    return RunProgress(meta, finished, rounds)


# Versions recorded for the reader, not what ran: every libnccl mapped, bound or not.
RECORD_ONLY = frozenset({"nccl_mapped"})


def resume_mismatch(meta: RunMeta, current: dict[str, Any]) -> str | None:
    """Why the recorded run cannot be continued by this one, or None.

    `current` has the same keys as meta.json: config (dumped), config_hash, world_size,
    backend, versions. Mixing samples of two configurations, world sizes or software
    stacks in one row would make the row mean nothing, so any difference is refused.
    """
    if meta.config_hash != current["config_hash"]:
        recorded = meta.config.model_dump()
        differ = sorted(
            name
            for name in current["config"]
            if recorded.get(name) != current["config"][name] and name not in UNHASHED
        )
        shown = ", ".join(
            f"{name}: {recorded.get(name)!r} there, {current['config'][name]!r} here"
            for name in differ
        )
        return f"the run was measured with another config ({shown or 'hash differs'})"
    for name in ("world_size", "backend"):
        if getattr(meta, name) != current[name]:
            there = getattr(meta, name)
            return f"the run was measured with {name} {there}, this is {current[name]}"
    differ = [
        f"{name} {recorded}, this is {current['versions'].get(name)}"
        for name, recorded in meta.versions.recorded().items()
        if name not in RECORD_ONLY and current["versions"].get(name) != recorded
    ]
    return f"the run was measured with {'; with '.join(differ)}" if differ else None
