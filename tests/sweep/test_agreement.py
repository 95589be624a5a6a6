"""Out of memory outside binding, on one rank of a real gloo world: a real allocation the
CPU allocator refuses (2**60 bytes), and every rank skips together instead of waiting."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from support.distworld import SharedWorld

from commbench.config.settings import TimingConfig
from commbench.sweep.agreement import PointSkipped, agree_or_skip
from commbench.sweep.timing import Batching, measure

TOO_MUCH = 2**60  # bytes: no allocator grants it, so the failure is real


@pytest.fixture(scope="module")
def two_ranks() -> SharedWorld:
    """One gloo world of 2 runs both tests' functions: a skipped point leaves it usable."""
    return SharedWorld(
        2, {"allocate": _allocate_on_rank1, "capture": _measure_with_a_failing_capture}
    )


def _allocate_on_rank1(world) -> str:
    size = TOO_MUCH if world.rank == 1 else 8
    try:
        agree_or_skip(world, "the check's expected values", lambda: torch.empty(size))
    except PointSkipped as skipped:
        return str(skipped)
    return "went on"


def test_out_of_memory_on_one_rank_skips_on_every_rank(two_ranks: SharedWorld) -> None:
    reason = "skipped: out of memory on rank 1 during the check's expected values"
    assert two_ranks("allocate") == [reason, reason]


def _capture_too_large_on_rank1(run, iters):
    if dist.get_rank() == 1:
        torch.empty(TOO_MUCH, dtype=torch.uint8)
    return lambda: [run() for _ in range(iters)]


def _measure_with_a_failing_capture(world) -> str:
    tensor = torch.ones(4)
    timing = TimingConfig(
        warmup=2, min_sample_ms=0.1, max_iters=4, min_samples=2, max_samples=2,
        target_ci=0.5, max_seconds=5,
    )  # fmt: skip
    try:
        measure(lambda: dist.all_reduce(tensor), world, timing, batching=Batching(
            _capture_too_large_on_rank1, captured=True
        ))  # fmt: skip
    except PointSkipped as skipped:
        return str(skipped)
    return "measured"


def test_a_capture_out_of_memory_on_one_rank_skips_the_point_on_every_rank(
    two_ranks: SharedWorld,
) -> None:
    reason = "skipped: out of memory on rank 1 during graph capture"
    assert two_ranks("capture") == [reason, reason]
