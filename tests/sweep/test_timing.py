"""The sample loop's order of events on real gloo worlds, with the way a batch is made
injected (`Batching`): CUDA graphs cannot run here, but what the loop does around them can.
And the sweep's device peak, with the allocator's counters injected (`AllocatorStats`)."""

from __future__ import annotations

import time

import pytest
import torch
import torch.distributed as dist
from support.distworld import SharedWorld

from commbench.config.settings import TimingConfig
from commbench.sweep.memory import DeviceMemory
from commbench.sweep.timing import WARMUP_S, Batching, HostTimer, choose_iters, measure, warm_up

QUICK_TIMING = {
    "warmup": 3,
    "min_sample_ms": 1.0,
    "max_iters": 1000,
    "min_samples": 3,
    "max_samples": 3,
    "target_ci": 0.5,
    "max_seconds": 30,
}


def timing_config(**fields: object) -> TimingConfig:
    """A timing config with the fields a test does not care about at quick values."""
    return TimingConfig(**{**QUICK_TIMING, **fields})


REPLAY_OP_S = 0.01  # what one operation costs in the slow "replay" below


@pytest.fixture(scope="module")
def two_ranks() -> SharedWorld:
    """One gloo world of 2 runs each loop test's function in turn (the skewed capture
    last: it leaves rank 1 behind until its own gather)."""
    return SharedWorld(
        2,
        {
            "warm_up_counts": _warm_up_counts,
            "k_from_a_replay": _k_from_a_replay,
            "first_samples": _first_samples,
            "slow_first_op": _slow_first_op,
        },
    )


def test_k_is_the_fewest_operations_that_last_min_sample_ms_within_max_iters() -> None:
    timing = timing_config(
        warmup=1,
        max_iters=20,
        max_samples=4,
        max_seconds=1,
    )
    assert choose_iters(1e-4, timing) == 10  # 0.1 ms operations: 10 make 1 ms
    assert choose_iters(2.5e-4, timing) == 4
    assert choose_iters(3e-4, timing) == 4  # 3 would be 0.9 ms: at least, not about
    assert choose_iters(1e-3, timing) == 1
    assert choose_iters(5e-3, timing) == 1  # one operation outlasts a sample: K = 1
    assert choose_iters(1e-5, timing) == 20  # 100 wanted: max_iters bounds K
    assert choose_iters(0.0, timing) == 20  # a clock too coarse to see it: bounded too
    longer = timing.model_copy(update={"min_sample_ms": 2.5, "max_iters": 100})
    assert choose_iters(1e-4, longer) == 25  # K scales with the sample's length


def _slow_replay(run, iters):
    """A batch whose operations each cost REPLAY_OP_S more than an eager call."""

    def replay() -> None:
        for _ in range(iters):
            run()
            time.sleep(REPLAY_OP_S)

    return replay


def _k_from_a_replay(world) -> int:
    tensor = torch.ones(4)
    timing = timing_config(
        min_sample_ms=50,
        min_samples=2,
        max_samples=2,
        max_seconds=5,
    )
    batching = Batching(_slow_replay, captured=True)
    return measure(lambda: dist.all_reduce(tensor), world, timing, batching=batching).iters


def test_k_is_chosen_from_a_batch_made_as_the_samples_are(two_ranks: SharedWorld) -> None:
    """An eager all_reduce of 4 floats takes well under 1 ms here: K from it would be
    hundreds. The samples replay batches whose operations take 10 ms: K must be about 5."""
    for iters in two_ranks("k_from_a_replay"):
        assert iters <= 10, iters


SKEW_S = 1.0


def _skewed_capture(run, iters):
    """Rank 1 takes SKEW_S longer to make its batch, as a slow graph capture would."""
    if dist.get_rank() == 1:
        time.sleep(SKEW_S)
    return lambda: [run() for _ in range(iters)]


def _first_samples(world) -> list[float]:
    tensor = torch.ones(4)
    timing = timing_config(
        warmup=2,
        min_sample_ms=0.01,
        max_iters=1,
    )
    batching = Batching(_skewed_capture, captured=True)
    measurement = measure(lambda: dist.all_reduce(tensor), world, timing, batching=batching)
    return measurement.samples.tolist()


def test_the_first_sample_does_not_carry_the_ranks_capture_skew(two_ranks: SharedWorld) -> None:
    """K is 1, so without a resync after the capture rank 0's first sample would wait
    SKEW_S for rank 1 inside its all_reduce, and the slowest rank's time would show it."""
    for samples in two_ranks("first_samples"):
        assert samples[0] < SKEW_S / 2, samples


class Allocator:
    """Counters as CUDA's caching allocator keeps them, over plain integers."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def take(self, nbytes: int) -> None:
        self.now += nbytes
        self.most = max(self.most, self.now)

    def synchronize(self) -> None:
        pass

    def allocated(self) -> int:
        return self.now

    def peak(self) -> int:
        return self.most

    def reset_peak(self) -> None:
        self.most = self.now


def test_the_sweep_peak_survives_the_per_point_resets() -> None:
    allocator = Allocator()
    memory = DeviceMemory(allocator)
    allocator.take(100)  # the arena
    allocator.take(2**30)  # a 1 GiB allocation, freed again
    allocator.take(-(2**30))

    def flat_copy() -> None:  # a list form's hidden flat buffer: 10 bytes, then freed
        allocator.take(10)
        allocator.take(-10)

    assert memory.temporary_bytes(flat_copy) == 10
    assert memory.temporary_bytes(flat_copy) == 10
    assert memory.sweep_peak() == 100 + 2**30
    allocator.take(2**31)
    assert memory.sweep_peak() == 100 + 2**31


def test_without_an_allocator_nothing_is_guessed() -> None:
    memory = DeviceMemory.of(torch.device("cpu"))
    assert memory.temporary_bytes(lambda: None) is None
    assert memory.sweep_peak() != memory.sweep_peak()  # NaN


def _warm_up_counts(world) -> dict[str, int]:
    """How many operations warm_up runs for a 60 ms operation and for a fast one, after
    an operation that just ran (the check's), and how many measure runs in all for the
    slow one (K, and the operations)."""
    tensor = torch.ones(4)
    counts = {"slow": 0, "fast": 0, "after": 0, "measured": 0}

    def op(kind: str) -> None:
        dist.all_reduce(tensor)
        counts[kind] += 1
        if kind != "fast":
            time.sleep(SLOW_OP_S)

    warm_up(lambda: op("slow"), 5, world, HostTimer())
    warm_up(lambda: op("fast"), 5, world, HostTimer())
    warm_up(lambda: op("after"), 5, world, HostTimer(), ran_first=True)
    timing = timing_config(
        warmup=5,
        min_sample_ms=SLOW_OP_S * 1e3 / 2.5,  # one operation is K = 1, clearly
    )
    counts["K"] = measure(lambda: op("measured"), world, timing).iters
    return counts


SLOW_OP_S = 0.06


def test_a_warm_up_of_slow_operations_ends_once_it_has_lasted_long_enough(
    two_ranks: SharedWorld,
) -> None:
    """Five operations asked for: the first, untimed, then two 60 ms ones pass WARMUP_S
    (0.1 s), on every rank alike (after the check's operation, which was the first, two);
    a fast operation gets all five. An operation that clearly lasts a sample is not
    calibrated: K = 1, and 3 + 3 samples' operations."""
    assert WARMUP_S < 2 * SLOW_OP_S
    expected = {"slow": 3, "fast": 5, "after": 2, "measured": 3 + 3, "K": 1}
    assert two_ranks("warm_up_counts") == [expected, expected]


STEADY_OP_S = 0.04
FIRST_OP_S = 0.2  # what a group's set-up adds to its first collective on NCCL


def _slow_first_op(world) -> dict[str, tuple[int, int]]:
    """measure's K and the operations it ran in all, for a steady 40 ms operation, for the
    same operation whose first call takes 200 ms (a group connecting on first use), and for
    that slow first call made by the check, just before (`ran_first`)."""
    tensor = torch.ones(4)
    timing = timing_config(
        warmup=5,
        min_sample_ms=STEADY_OP_S * 1e3 * 1.5,  # K = 2 for a steady operation
        min_samples=2,
        max_samples=2,
    )
    found = {}
    for case in ("steady", "slow first", "slow check"):
        op = SlowAtFirst(tensor, 0.0 if case == "steady" else FIRST_OP_S)
        if case == "slow check":
            op()
        found[case] = (measure(op, world, timing, ran_first=case == "slow check").iters, op.calls)
    return found


class SlowAtFirst:
    """An all_reduce that sleeps STEADY_OP_S after each call, `first_s` after the first."""

    def __init__(self, tensor: torch.Tensor, first_s: float) -> None:
        self.tensor, self.first_s, self.calls = tensor, first_s, 0

    def __call__(self) -> None:
        dist.all_reduce(self.tensor)
        time.sleep(self.first_s if self.first_s and not self.calls else STEADY_OP_S)
        self.calls += 1


def test_a_slow_first_operation_sets_neither_k_nor_the_warm_up(two_ranks: SharedWorld) -> None:
    """The first call is never timed: K and the operations run are a steady operation's.
    Timed, a 200 ms first call would end the warm-up at once and make K 1 (it outlasts
    twice a sample's 60 ms minimum), so only its first call and 2 samples of 1 would run.
    Steady: 3 warm-up operations (the first untimed; 1 + ceil(0.1 s / 40 ms) > 3), 2 to
    calibrate, 2 samples of K = 2."""
    steady = (2, 3 + 2 + 2 * 2)
    for found in two_ranks("slow_first_op"):
        assert found == {"steady": steady, "slow first": steady, "slow check": steady}
