"""The result schema and the run directory: what a sweep writes and consumers read.

A run directory holds results.csv (one row per point, appended as each finishes),
samples.csv (the raw samples, long format), rank_samples.csv (every rank's time of
every sample, for straggler analysis), rounds.csv (one row per point and round, written
last: the record that the round's samples are complete) and meta.json (written at
start, rewritten at the end, always atomically). Nothing here imports torch. The one
reader of these files is runreader.py; meta.json's model is runmeta.py.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from commbench.errors import UsageError
from commbench.paths import check_directory
from commbench.rundir.lock import check_unlocked, release, take
from commbench.rundir.schema import (
    DERIVED,
    META_JSON,
    RANK_SAMPLE_COLUMNS,
    RANK_SAMPLES_CSV,
    RESULT_COLUMNS,
    RESULTS_CSV,
    ROUND_COLUMNS,
    ROUNDS_CSV,
    RUN_FILES,
    SAMPLE_COLUMNS,
    SAMPLES_CSV,
    SCHEMA_VERSION,
)


def default_run_dir(label: str | None, root: Path = Path("results")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / (f"{stamp}-{label}" if label else stamp)


class CsvAppender:
    """Appends rows to a CSV file, synced per call so a killed run keeps every row.

    Each call is one write(2) of whole lines: a kill lands between two calls, not in
    the middle of a line (a torn tail could only come from a full disk or a power cut,
    and a resume cuts it off).
    """

    def __init__(self, path: Path, columns: list[str]) -> None:
        self._columns = columns
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size == 0:
            self._write([], header=True)

    def _write(self, rows: list[dict[str, Any]], header: bool = False) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self._columns, extrasaction="raise")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        data = text.getvalue().encode()
        while data:
            data = data[os.write(self._fd, data) :]
        os.fsync(self._fd)

    def append(self, rows: list[dict[str, Any]]) -> None:
        self._write(rows)

    def close(self) -> None:
        os.close(self._fd)


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never a part (one writer at a time)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def check_new_run_dir(path: Path, force: bool = False) -> None:
    """Refuse, before anything starts, a run directory that would overwrite results
    (unless `force`, and then only a commbench run) or that cannot be created."""
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise UsageError(
                f"out: {str(path)!r} already exists and is not empty"
                " (--force replaces a previous run, --resume finishes it)"
            )
        if not (path / META_JSON).exists():
            raise UsageError(
                f"out: {str(path)!r} is not a commbench run directory; --force only replaces runs"
            )
        check_unlocked(path)
    check_directory("out", path)


class RunWriter:
    """Rank 0's writer for one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results = CsvAppender(path / RESULTS_CSV, RESULT_COLUMNS)
        self.samples = CsvAppender(path / SAMPLES_CSV, SAMPLE_COLUMNS)
        self.rank_samples = CsvAppender(path / RANK_SAMPLES_CSV, RANK_SAMPLE_COLUMNS)
        self.rounds = CsvAppender(path / ROUNDS_CSV, ROUND_COLUMNS)

    @classmethod
    def create(cls, path: Path, force: bool = False) -> RunWriter:
        """Create a new run directory and hold its lock; an existing run is replaced only
        with `force`, and then only commbench's own files go (the run's, and what was
        derived from it: DERIVED)."""
        check_new_run_dir(path, force)
        try:
            path.mkdir(parents=True, exist_ok=True)
            take(path)
            for name in RUN_FILES:
                (path / name).unlink(missing_ok=True)
            for pattern in DERIVED:
                for derived in path.glob(pattern):
                    derived.unlink()
            return cls(path)
        except OSError as err:
            raise UsageError(f"out: {str(path)!r} cannot be written: {err.strerror}") from None

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.path / META_JSON, {"schema_version": SCHEMA_VERSION, **meta})

    def close(self) -> None:
        for appender in (self.results, self.samples, self.rank_samples, self.rounds):
            appender.close()
        release(self.path)
