"""`sweep --dry-run`: what a sweep would measure and about how long it would take, from
the config alone: nothing is launched or written, torch is not imported."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rich.table import Table

from commbench.catalogue import row_bytes
from commbench.config.settings import SweepConfig
from commbench.errors import UsageError
from commbench.output.console import make_console
from commbench.output.units import format_size
from commbench.point import width_label
from commbench.sweep.launch import is_launched, world_size_from_env
from commbench.sweep.plan import build_plan


@dataclass(frozen=True)
class Estimate:
    """The sampling time of a sweep, in seconds, as its timing settings bound it."""

    low: float
    high: float


def estimate(config: SweepConfig, points: int) -> Estimate:
    """A simple model of the timed part. Each point and round takes min_samples to
    max_samples samples, each about min_sample_ms long (K operations, K chosen so), and
    stops taking more at max_seconds once it has min_samples: `low` if every point stops
    on its confidence interval at once, `high` if none does. Not counted: start-up,
    warm-up, calibration and checks, and samples longer than min_sample_ms (one operation
    slower than that, or K capped at max_iters)."""
    timing = config.timing
    sample = timing.min_sample_ms / 1e3
    fewest = timing.min_samples * sample
    most = max(fewest, min(timing.max_seconds, timing.max_samples * sample))
    rounds = points * config.rounds
    return Estimate(rounds * fewest, rounds * most)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def dry_run(config: SweepConfig, world: int, world_note: str) -> None:
    """Print the plan on `world` ranks, each point's bytes per rank, and the estimate."""
    plan = build_plan(config, world)
    console = make_console(highlight=False)
    table = Table(title=f"commbench sweep --dry-run: {len(plan)} points on {world} ranks")
    for name in ("collective", "variant", "dtype", "T", "width", "tp", "dp", "bytes per rank"):
        table.add_column(name, justify="left" if name in ("collective", "variant") else "right")
    for point in plan:
        table.add_row(
            point.collective, point.variant, point.dtype, str(point.tokens),
            width_label(point.key()), str(point.tp), str(point.dp), format_size(row_bytes(point)),
        )  # fmt: skip
    console.print(table)
    largest = max(plan, key=row_bytes)
    guess = estimate(config, len(plan))
    console.print(
        f"world: {world} ({world_note}); rounds: {config.rounds}; largest point:"
        f" {format_size(row_bytes(largest))} per rank ({largest.describe()})."
    )
    console.print(
        f"estimated sampling time: {_duration(guess.low)} to {_duration(guess.high)}"
        f" ({len(plan)} points x {config.rounds} round(s), each {config.timing.min_samples} to"
        f" {config.timing.max_samples} samples of about {config.timing.min_sample_ms:g} ms,"
        f" at most {config.timing.max_seconds:g} s once it has {config.timing.min_samples};"
        " start-up, warm-up, calibration, checks and operations slower than a sample not"
        " counted).",
        soft_wrap=True,
    )
    console.print("Nothing was launched or written.")


DRY_RUN_WORLD = 4  # without --nproc: what a sweep starts on a machine without GPUs


def dry_run_here(config: SweepConfig, nproc: int | None) -> int:
    """The dry run in this process: under a launcher its world (rank 0 prints), else
    `nproc` ranks (--nproc, or a resumed run's world), else DRY_RUN_WORLD (counting GPUs
    would import torch)."""
    if is_launched():
        if os.environ.get("RANK") == "0":
            dry_run(config, world_size_from_env(), "the launcher's")
        return 0
    if nproc is not None and nproc < 1:
        raise UsageError(f"nproc: must be at least 1 (got {nproc})")
    note = "given" if nproc else "assumed; a sweep without --nproc starts one rank per GPU"
    dry_run(config, nproc or DRY_RUN_WORLD, note)
    return 0
