"""A sweep's memory figures: each point's temporary device bytes, the sweep's device peak,
and every rank's resident memory (meta.json's `memory`, docs/benchmarks.md, "Memory")."""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch

from commbench.sweep.agreement import agree_or_skip
from commbench.sweep.world import World


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
    run out of memory: agreed on, PointSkipped on every rank (commbench/oom.py)."""
    if not memory.reports:
        return math.nan
    nbytes = agree_or_skip(world, "the temporary-memory probe", lambda: memory.temporary_bytes(run))
    return float(world.gather_floats([float(nbytes)]).max())
