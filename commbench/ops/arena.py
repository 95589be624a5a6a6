"""Every point's buffers as views of one allocation (nccl-tests allocates the same way).

A sweep's memory is then that of its largest point, whatever the number of points, and
nothing is allocated between the timed points. A measuring arena on the `meta` device
allocates nothing: binding a point to it tells how many bytes the point needs, so a
point over `--max-bytes` is skipped before anything is allocated.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import torch

ALIGN = 256  # bytes: every buffer starts aligned, as the CUDA caching allocator's blocks do

META = torch.device("meta")


def aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN


class Arena:
    """A bump allocator over one byte buffer: `reset()`, then `empty()` per buffer.

    Views handed out before a `reset()` alias those handed out after it: one point's
    buffers are bound at a time.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._storage: torch.Tensor | None = None
        self.used = 0  # bytes handed out since the last reset, alignment included

    @property
    def capacity(self) -> int:
        if self.device == META:
            return math.inf  # type: ignore[return-value]  # measuring: never full
        return 0 if self._storage is None else self._storage.numel()

    def reserve(self, nbytes: int) -> None:
        """Make room for `nbytes`. Growing frees the old buffer first, so the peak stays
        one buffer; out of memory raises and leaves the arena empty."""
        if nbytes <= self.capacity:
            return
        self._storage = None
        self._storage = torch.empty(nbytes, dtype=torch.uint8, device=self.device)

    def reset(self) -> None:
        self.used = 0

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised tensor of `shape`, a view of the arena at the next offset."""
        start = aligned(self.used)
        nbytes = math.prod(shape) * dtype.itemsize
        self.used = start + nbytes
        if self.device == META or nbytes == 0:  # nothing to hold (a rank routed no rows)
            return torch.empty(shape, dtype=dtype, device=self.device)
        if self.used > self.capacity:
            raise RuntimeError(f"arena of {self.capacity} bytes has no room for {shape} {dtype}")
        return self._storage[start : self.used].view(dtype).view(shape)


def _libc_trim() -> ctypes._CFuncPtr | None:
    """glibc's malloc_trim, or None elsewhere (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _libc_trim()


def return_freed_memory(device: torch.device) -> None:
    """Between points on CPU: hand the heap's freed pages back to the system.

    gloo's worker threads allocate a list form's flat copies in their own malloc arenas,
    and glibc keeps what is freed there; without this a sweep's RSS grows with the number
    of different points, not with the largest one. Outside the timed region, and a no-op
    on CUDA, whose caching allocator is meant to keep its blocks.
    """
    if device.type == "cpu" and MALLOC_TRIM is not None:
        MALLOC_TRIM(0)
