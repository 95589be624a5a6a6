"""Out of memory on one rank, outside the timed loop: every rank skips the point together.

A rank that runs out of memory must not leave the others waiting in a collective, so
every step that may allocate (binding, the check's expected values, the headroom of a
list form's flat buffer, the temporary-memory probe, a graph capture) runs on every rank
and ends in one agreement over the control group before any collective that depends
on it: all ranks go on, or all skip the point with the first rank's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

import torch

# torch.OutOfMemoryError is torch 2.5's name for torch.cuda.OutOfMemoryError (1.13+)
CUDA_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

T = TypeVar("T")


class PointSkipped(Exception):
    """Every rank agreed that the point cannot run here; the message is the row's note."""


class Agreeing(Protocol):
    rank: int
    device: torch.device

    def all_true(self, flag: bool) -> bool: ...

    def gather_objects(self, value: object) -> list[object]: ...


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA raises OutOfMemoryError; the CPU allocator a plain RuntimeError that says so."""
    return isinstance(err, CUDA_OUT_OF_MEMORY) or "can't allocate memory" in str(err)


def first_problem(world: Agreeing, problem: str | None) -> str:
    """The lowest rank's problem, once the ranks have agreed some rank has one: every rank
    calls it, with its own problem or None (the reasons travel only then)."""
    return next(p for p in world.gather_objects(problem) if p)


def agree_or_skip(world: Agreeing, what: str, step: Callable[[], T]) -> T:
    """`step()` on every rank; if it ran out of memory on any rank, PointSkipped on all.

    The agreement is a gather of one number over the control group (so also a barrier);
    the reasons travel only when some rank has one.
    """
    value, problem = None, None
    try:
        value = step()
    except RuntimeError as err:
        if not is_out_of_memory(err):
            raise
        problem = f"skipped: out of memory on rank {world.rank} during {what}"
        if world.device.type == "cuda":
            torch.cuda.empty_cache()
    if not world.all_true(problem is None):
        raise PointSkipped(first_problem(world, problem))
    return value  # type: ignore[return-value]
