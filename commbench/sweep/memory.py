"""A sweep's memory: what each rank can have, checked before anything is allocated (a
point that cannot fit is skipped with its reason, as over --max-bytes, rather than killed
by the kernel's OOM killer); and its figures: each point's temporary device bytes, the
sweep's device peak, every rank's resident memory (meta.json's `memory`,
docs/benchmarks.md, "Memory")."""

from __future__ import annotations

import math
import os
import resource
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from commbench.errors import UsageError
from commbench.ops import Footprint, footprint
from commbench.ops.base import EXACT_LIMIT
from commbench.point import Point
from commbench.sweep.agreement import agree_or_skip
from commbench.sweep.launch import launched_here
from commbench.sweep.world import World
from commbench.units import format_size


class AllocatorStats(Protocol):
    """What `DeviceMemory` reads from a device's allocator (CUDA's caching allocator)."""

    def synchronize(self) -> None: ...

    def allocated(self) -> int: ...

    def peak(self) -> int: ...

    def reset_peak(self) -> None: ...


class CudaAllocator:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def allocated(self) -> int:
        return torch.cuda.memory_allocated(self.device)

    def peak(self) -> int:
        return torch.cuda.max_memory_allocated(self.device)

    def reset_peak(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)


class DeviceMemory:
    """A sweep's device memory: each point's temporary bytes, and the peak of the whole
    sweep, although measuring the former resets the allocator's peak each time.

    Only CUDA's caching allocator reports these (NCCL's own buffers are outside it); on
    other devices both are unknown (None, NaN), never a guess.
    """

    def __init__(self, stats: AllocatorStats | None) -> None:
        self._stats = stats
        self._peak_before_reset = 0

    @classmethod
    def of(cls, device: torch.device) -> DeviceMemory:
        return cls(CudaAllocator(device) if device.type == "cuda" else None)

    def temporary_bytes(self, run: Callable[[], object]) -> int | None:
        """Peak memory one operation allocates beyond what is already allocated (its inputs
        and outputs): the hidden flat buffer of a list form, for instance."""
        stats = self._stats
        if stats is None:
            return None
        stats.synchronize()
        before = stats.allocated()
        self._peak_before_reset = max(self._peak_before_reset, stats.peak())
        stats.reset_peak()
        run()
        stats.synchronize()
        return stats.peak() - before

    @property
    def reports(self) -> bool:
        """Whether this device's allocator reports anything (CUDA's does)."""
        return self._stats is not None

    def sweep_peak(self) -> float:
        """The most ever allocated at once since this process started."""
        if self._stats is None:
            return math.nan
        return float(max(self._peak_before_reset, self._stats.peak()))


def resident_bytes() -> float:
    """This process's resident memory now (Linux); NaN where /proc is not there."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return math.nan
    return float(pages * os.sysconf("SC_PAGE_SIZE"))


def memory_figures(
    world: World, rss_start: float, arena_bytes: float, device: DeviceMemory
) -> dict[str, list[float | None]]:
    """Every rank's memory: RSS once its groups existed, its peak and the growth between
    them, the arena, and on CUDA the allocator's peak (None where unknown)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # KiB on Linux
    every = world.gather_floats(
        [rss_start, peak, peak - rss_start, arena_bytes, device.sweep_peak()]
    )
    names = ("rss_start_bytes", "rss_peak_bytes", "rss_growth_bytes", "arena_bytes")
    columns = dict(zip((*names, "device_peak_bytes"), every.T.tolist(), strict=True))
    return {
        name: [None if math.isnan(v) else v for v in values] for name, values in columns.items()
    }


def temporary_bytes(world: World, memory: DeviceMemory, run: Callable[[], object]) -> float:
    """The largest over ranks of what one operation allocates beyond its buffers; NaN,
    with nothing run, where the device's allocator reports nothing (CPU). Running it may
    run out of memory: agreed on, PointSkipped on every rank
    (commbench/sweep/agreement.py)."""
    if not memory.reports:
        return math.nan
    nbytes = agree_or_skip(world, "the temporary-memory probe", lambda: memory.temporary_bytes(run))
    return float(world.gather_floats([float(nbytes)]).max())


@dataclass(frozen=True)
class MemoryBudget:
    """What one rank can have: the memory free where its buffers live (the host's on
    CPU, its GPU's on CUDA) when the sweep starts, shared by the ranks that live there."""

    free: float  # bytes; inf where the system does not say
    sharing: int  # ranks whose buffers live in the same memory
    where: str  # "host memory", "cuda:0 memory"

    @property
    def per_rank(self) -> float:
        return self.free / self.sharing

    def refuses(self, point: Point, need: Footprint) -> str | None:
        """Why the point cannot fit on this rank, or None. It needs its buffers, the
        backend's hidden copy, the check's expected output and its pattern at once."""
        nbytes = point_bytes(point, need)
        if nbytes <= self.per_rank:
            return None
        return (
            f"skipped: needs {format_size(nbytes)} per rank, over the"
            f" {format_size(self.per_rank)} each of the {self.sharing} rank(s) sharing"
            f" {self.where} can have ({format_size(self.free)} free)"
        )


def point_bytes(point: Point, need: Footprint) -> int:
    """The most a point holds at once on a rank: its buffers, the backend's hidden copy,
    the check's expected output, and what the check's pattern allocates (ops/base.py
    `pattern`): its row and column terms in int64, two such arrays alive at once, then
    int16 terms and values for each distinct row, of which there are at most the table's
    2 * EXACT_LIMIT + 1 (past that many, rows repeat). Without the pattern, a very wide
    point (`--hidden 1000000000`) passes a budget its check then exceeds."""
    width = point.hidden or point.vocab
    rows = point.tokens * max(point.topk, 1)
    distinct = min(rows, 2 * EXACT_LIMIT + 1)
    pattern = 16 * (width + rows) + distinct * width * (2 + point.element_size)
    return need.total + need.output + pattern


def free_bytes(device: torch.device) -> float:
    """The memory free for buffers on `device`: the GPU's free memory, or on CPU the
    host's MemAvailable (what can be allocated without swapping); inf where unknown."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return math.inf


def memory_budget(world: World) -> tuple[MemoryBudget, int]:
    """This rank's budget, and how many ranks run on its host (every rank calls this)."""
    place = (socket.gethostname(), str(world.device))
    places = world.gather_objects(place)
    on_host = sum(host == place[0] for host, _ in places)
    where = "host memory" if world.device.type == "cpu" else f"{world.device} memory"
    return MemoryBudget(free_bytes(world.device), places.count(place), where), on_host


def crowding(ranks: int, backend: str, gpus: int) -> str | None:
    """A warning when the ranks on a host outnumber its CPU cores (gloo) or its GPUs
    (nccl): they then wait for each other, and the times measure that wait."""
    if backend == "gloo":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        cores = cores or os.cpu_count() or ranks
        if ranks > cores:
            return (
                f"commbench: warning: {ranks} ranks share {cores} CPU core(s) on this host:"
                " they wait for each other, and the times measure that wait"
            )
    elif ranks > gpus:
        return (
            f"commbench: warning: {ranks} ranks share {gpus} GPU(s) on this host: they"
            " time each other, and the times measure that contention"
        )
    return None


def size_points(
    world: World, plan: list[Point], max_bytes: int | None
) -> tuple[dict[Point, Footprint], MemoryBudget]:
    """Every point's bytes on this rank and the memory this rank can have, known before
    the first allocation (every rank calls this). A sweep whose every point is over
    --max-bytes, or over that memory, is refused on every rank in the same line; a point
    over either is skipped with its reason when its turn comes. Rank 0 warns when the
    ranks outnumber cores or GPUs (`sweep --nproc` warned before launching them)."""
    footprints = {p: footprint(p, world.split(p.tp)) for p in plan}
    budget, on_host = memory_budget(world)
    if world.rank == 0 and not launched_here():
        gpus = torch.cuda.device_count() if world.device.type == "cuda" else 0
        if warning := crowding(on_host, world.backend, gpus):
            print(warning, file=sys.stderr)
    limit = max_bytes or math.inf
    sizes = [fp.total for fp in footprints.values()]
    if not world.all_true(min(sizes) <= limit):
        raise UsageError(
            f"max-bytes: {format_size(limit)} is below every point (the smallest needs"
            f" {format_size(min(sizes))} per rank)"
        )
    smallest = min(point_bytes(p, fp) for p, fp in footprints.items())
    every = world.gather_floats([smallest, budget.per_rank, budget.free, budget.sharing])
    over = every[:, 0] > every[:, 1]
    if over.any():  # the first rank that has no room, in the same line on every rank
        rank = int(over.int().argmax())
        needs, per_rank, free, sharing = every[rank].tolist()
        raise UsageError(
            f"memory: no point fits: the smallest needs {format_size(needs)} on rank {rank},"
            f" over the {format_size(per_rank)} each of the {sharing:.0f} rank(s) sharing its"
            f" memory can have ({format_size(free)} free); fewer --tokens, --hidden or ranks"
        )
    return footprints, budget
