"""What a sweep leaves in its run directory, written as it goes, and what it shows as it
goes (rank 0 only).

Rank 0 holds a `RunRecorder`; every other rank a `Recorder`, whose methods do nothing,
so the sweep calls the same methods on every rank and never asks which one it is.
A round's samples are written before its record in rounds.csv (a record means its
samples are on disk), a point's results row once it is final, meta.json at the start
and again at the end (or when the run stops), always atomically.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from commbench.config.settings import SweepConfig
from commbench.errors import UsageError
from commbench.rundir.lock import release, take
from commbench.rundir.resume import RunProgress, read_meta, recover, resume_mismatch
from commbench.rundir.schema import KEY_COLUMNS
from commbench.rundir.writer import RunWriter, default_run_dir
from commbench.sweep.faults import stopped_message
from commbench.sweep.launch import launched_here
from commbench.sweep.timing import Measurement
from commbench.sweep.world import World

# What shows a finished run on rank 0 (its directory, the console): the command passes
# the presentation layer's; the engine never imports it.
ShowRun = Callable[[Path, Console], None]


class Recorder:
    """A rank's record of the run: nothing, except on rank 0 (`RunRecorder`)."""

    def write_meta(self, meta: dict[str, Any]) -> None:
        """meta.json, whole."""

    def round(self, row: dict[str, Any], measurement: Measurement, round_: int, first: int) -> None:
        """One round's samples (`first` numbers its first), then its record."""

    def result(self, row: dict[str, Any]) -> None:
        """A point's final results row."""

    def progress_bar(self, console: Console) -> Progress:
        """The sweep's progress bar, shown by rank 0 only."""
        return _progress_bar(console, shown=False)

    def finish(self, meta: dict[str, Any], show: ShowRun | None, console: Console) -> None:
        """The last meta.json; the files closed; then `show` shows the finished run."""

    def stopped(
        self, meta: dict[str, Any], stop: dict[str, str], points: tuple, rounds: tuple
    ) -> None:
        """The run stops early: `stop` (when, why) in meta.json (when it was written), and
        what is kept ((finished, planned) points and rounds) and how to finish, on stderr."""


class RunRecorder(Recorder):
    """Rank 0's recorder, over the run directory's files."""

    def __init__(self, writer: RunWriter, nproc: int | None = None) -> None:
        self.writer = writer
        self.nproc = nproc  # `sweep --nproc N` launched the run: its resume needs N again

    @classmethod
    def open(
        cls, config: SweepConfig, world_size: int, backend: str, resume: bool, force: bool
    ) -> tuple[RunRecorder, RunProgress | None]:
        """A new run directory (an existing run replaced only with `force`), or, resuming,
        the interrupted run's, checked against this run and repaired (its progress)."""
        path = Path(config.out) if config.out else default_run_dir(config.label)
        nproc = world_size if launched_here() else None
        if not resume:
            return cls(RunWriter.create(path, force), nproc), None
        check_resumable(path, config, world_size, backend)
        take(path, "resume")  # before the repair: no other sweep writes it
        progress = recover(path)  # it may replace files: the writer opens them after
        return cls(RunWriter(path), nproc), progress

    @property
    def path(self) -> Path:
        return self.writer.path

    def write_meta(self, meta: dict[str, Any]) -> None:
        self.writer.write_meta(meta)

    def progress_bar(self, console: Console) -> Progress:
        return _progress_bar(console, shown=True)

    def round(self, row: dict[str, Any], measurement: Measurement, round_: int, first: int) -> None:
        key = {column: row[column] for column in KEY_COLUMNS}
        samples, rank_samples = sample_rows(key, measurement, round_, first)
        self.writer.samples.append(samples)
        self.writer.rank_samples.append(rank_samples)
        record = {
            **key,
            "round": round_,
            "iters": measurement.iters,
            "samples": len(measurement.samples),
            "stop": measurement.stop,
        }
        self.writer.rounds.append([record])

    def result(self, row: dict[str, Any]) -> None:
        self.writer.results.append([_clean(row)])

    def finish(self, meta: dict[str, Any], show: ShowRun | None, console: Console) -> None:
        self.writer.write_meta(meta)
        self.writer.close()
        if show is not None:
            show(self.writer.path, console)

    def stopped(
        self, meta: dict[str, Any], stop: dict[str, str], points: tuple, rounds: tuple
    ) -> None:
        if meta:
            self.writer.write_meta({**meta, "stopped": stop})
        release(self.writer.path)
        print(stopped_message(points, rounds, self.writer.path, self.nproc), file=sys.stderr)


def open_recorder(
    world: World, config: SweepConfig, resume: bool, force: bool
) -> tuple[Recorder, RunProgress | None]:
    """Rank 0 creates (or, resuming, checks and repairs) the run directory and records;
    every rank learns the outcome (a UsageError on all, or the progress to resume), and
    that all ranks run the same configuration. Every rank calls this."""
    hashes = world.gather_objects(config.config_hash())
    if len(set(hashes)) > 1:  # before anything is written
        raise UsageError(f"config: ranks were given different configurations: {hashes}")
    recorder, error, progress = Recorder(), None, None
    if world.rank == 0:
        try:
            recorder, progress = RunRecorder.open(config, world.size, world.backend, resume, force)
        except UsageError as err:
            error = str(err)
    error, progress = world.from_rank0((error, progress))
    if error:
        raise UsageError(error)
    return recorder, progress


def _progress_bar(console: Console, shown: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        auto_refresh=False,  # no refresh thread competing with the timed loop for a core
        disable=not shown,
    )


def check_resumable(
    path: Path,
    config: SweepConfig,
    world_size: int,
    backend: str,
    versions: dict[str, Any] | None = None,
) -> None:
    """Refuse to resume `path` with another config, world, backend or software stack.

    `versions`: what the workers will record, where that is not this process's own (with
    `--nccl-lib` only the workers have the library preloaded)."""
    from commbench.env import probe

    current = {
        "config": config.model_dump(),
        "config_hash": config.config_hash(),
        "world_size": world_size,
        "backend": backend,
        "versions": probe.collect_versions() if versions is None else versions,
    }
    if problem := resume_mismatch(read_meta(path), current):
        raise UsageError(f"resume: {str(path)!r}: {problem}")


def sample_rows(
    key: dict[str, Any], measurement: Measurement, round_: int, first: int
) -> tuple[list[dict], list[dict]]:
    """samples.csv and rank_samples.csv rows of one round; `first` numbers its first sample."""
    samples, rank_samples = [], []
    for i, per_rank in enumerate(measurement.rank_samples, start=first):
        slowest = int(np.argmax(per_rank))
        common = {**key, "round": round_, "sample": i}
        samples.append({**common, "time_us": per_rank[slowest] * 1e6, "slowest_rank": slowest})
        rank_samples += [
            {**common, "rank": rank, "time_us": t * 1e6} for rank, t in enumerate(per_rank)
        ]
    return samples, rank_samples


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """NaN becomes an empty cell: a figure that could not be computed is not invented."""
    return {k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
