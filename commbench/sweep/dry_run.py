"""`sweep --dry-run`: what a sweep would measure and about how long it would take, from
the config alone: nothing is launched or written (torch is imported for the memory each
point needs, bound on its meta device: the memory guard's own figure)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from commbench.config.settings import SweepConfig
from commbench.errors import UsageError
from commbench.point import Point
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


@dataclass(frozen=True)
class DryRun:
    """What a sweep would measure on `world` ranks, and about how long it would sample."""

    config: SweepConfig
    plan: list[Point]
    world: int
    world_note: str  # where the world size came from, in words

    @property
    def estimate(self) -> Estimate:
        return estimate(self.config, len(self.plan))

    def memory(self) -> dict[Point, int]:
        """Each point's memory on its group's first rank: the very figure the sweep's memory
        guard judges (sweep.memory.point_bytes of ops.footprint), bound on torch's meta
        device (nothing allocated)."""
        from commbench.ops import footprint
        from commbench.ops.arena import META
        from commbench.ops.base import GroupContext
        from commbench.sweep.backend import choose_backend
        from commbench.sweep.memory import point_bytes

        backend = choose_backend(self.config.backend)
        needed = {}
        for point in self.plan:
            ctx = GroupContext(None, tuple(range(point.tp)), 0, META, backend)  # type: ignore[arg-type]
            needed[point] = point_bytes(point, footprint(point, ctx))
        return needed


DRY_RUN_WORLD = 4  # without --nproc: what a sweep starts on a machine without GPUs


def plan_dry_run(config: SweepConfig, nproc: int | None) -> DryRun | None:
    """The dry run in this process: under a launcher its world (None on every rank but 0:
    rank 0 shows it), else `nproc` ranks (--nproc, or a resumed run's world), else
    DRY_RUN_WORLD (counting GPUs would import torch)."""
    if is_launched():
        if os.environ.get("RANK") != "0":
            return None
        world, note = world_size_from_env(), "the launcher's"
    else:
        if nproc is not None and nproc < 1:
            raise UsageError(f"nproc: must be at least 1 (got {nproc})")
        world = nproc or DRY_RUN_WORLD
        note = "given" if nproc else "assumed; a sweep without --nproc starts one rank per GPU"
    return DryRun(config, build_plan(config, world), world, note)
