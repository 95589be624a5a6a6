"""The result schema and the run directory: what a sweep writes and consumers read.

A run directory holds results.csv (one row per point, appended as each finishes),
samples.csv (the raw samples, long format), rank_samples.csv (every rank's time of
every sample, for straggler analysis) and meta.json (written at start, rewritten at
the end, always atomically). Nothing here imports torch: compare, gate and report read
these files without it.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from commbench.errors import UsageError

SCHEMA_VERSION = 2  # 2: `vocab` joins the key; `padded_vocab`, `temp_mem_bytes` the results

KEY_COLUMNS = [
    "collective",
    "variant",
    "backend",
    "world_size",
    "dp",
    "tp",
    "dtype",
    "tokens",
    "hidden",
    "vocab",
]
RESULT_COLUMNS = [
    *KEY_COLUMNS,
    "padded_tokens",
    "padded_vocab",
    "bytes",
    "time_us",
    "time_us_p10",
    "time_us_p90",
    "time_us_min",
    "time_us_mean",
    "time_us_std",
    "ci_low_us",
    "ci_high_us",
    "cv",
    "outliers",
    "samples",
    "rounds",
    "iters",
    "stop",
    "algbw_gbps",
    "busbw_gbps",
    "check",
    "temp_mem_bytes",
    "api",
    "note",
]
SAMPLE_COLUMNS = [*KEY_COLUMNS, "round", "sample", "time_us", "slowest_rank"]
RANK_SAMPLE_COLUMNS = [*KEY_COLUMNS, "round", "sample", "rank", "time_us"]

RESULTS_CSV = "results.csv"
SAMPLES_CSV = "samples.csv"
RANK_SAMPLES_CSV = "rank_samples.csv"
META_JSON = "meta.json"


def default_run_dir(label: str | None, root: Path = Path("results")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / (f"{stamp}-{label}" if label else stamp)


class CsvAppender:
    """Appends rows to a CSV file, flushed per call so a killed run keeps every row."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self._handle = path.open("a", newline="")
        self._writer = csv.DictWriter(self._handle, fieldnames=columns, extrasaction="raise")
        if path.stat().st_size == 0:
            self._writer.writeheader()
            self._handle.flush()

    def append(self, rows: list[dict[str, Any]]) -> None:
        self._writer.writerows(rows)
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


class RunWriter:
    """Rank 0's writer for one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results = CsvAppender(path / RESULTS_CSV, RESULT_COLUMNS)
        self.samples = CsvAppender(path / SAMPLES_CSV, SAMPLE_COLUMNS)
        self.rank_samples = CsvAppender(path / RANK_SAMPLES_CSV, RANK_SAMPLE_COLUMNS)

    @classmethod
    def create(cls, path: Path) -> RunWriter:
        """Create a new run directory; an existing non-empty one is never overwritten."""
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UsageError(f"out: {str(path)!r} already exists and is not empty")
        try:
            path.mkdir(parents=True, exist_ok=True)
            return cls(path)
        except OSError as err:
            raise UsageError(f"out: {str(path)!r} cannot be written: {err.strerror}") from None

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.path / META_JSON, {"schema_version": SCHEMA_VERSION, **meta})

    def close(self) -> None:
        for appender in (self.results, self.samples, self.rank_samples):
            appender.close()


@dataclass(frozen=True)
class Run:
    """A run directory as consumers see it."""

    path: Path
    results: Any  # pandas.DataFrame
    samples: Any  # pandas.DataFrame
    meta: dict[str, Any]

    @property
    def label(self) -> str:
        return self.meta.get("label") or self.path.name


def read_run(path: Path) -> Run:
    """Read a run directory, with one-line errors naming the file and the problem."""
    import pandas as pd

    if not path.is_dir():
        raise UsageError(f"{path}: not a run directory")
    try:
        meta = json.loads((path / META_JSON).read_text())
        results = pd.read_csv(path / RESULTS_CSV, dtype={"note": str, "stop": str})
        samples = pd.read_csv(path / SAMPLES_CSV)
    except FileNotFoundError as err:
        raise UsageError(f"{path}: missing {Path(err.filename).name}") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise UsageError(f"{path}: unreadable results: {str(err).splitlines()[0]}") from None
    if meta.get("schema_version", 1) < 2:  # rows of a run made before logits_gather existed
        results = results.assign(vocab=0, padded_vocab=0, temp_mem_bytes=float("nan"))
        samples = samples.assign(vocab=0)
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise UsageError(f"{path / RESULTS_CSV}: missing columns {missing}")
    results["note"] = results["note"].fillna("")
    return Run(path, results, samples, meta)
