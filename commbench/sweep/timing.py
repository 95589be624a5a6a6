"""Timers and the sample loop (docs/method.md, "Timing").

One sample is K back-to-back operations between two timestamps, divided by K. On a
GPU the timestamps are CUDA events on the current stream, read after a sync; on CPU
they are `perf_counter` around the loop. Every sample starts after a world barrier so
that all dp groups run at once (for every sample but the first, the all_reduce of the
previous sample's times is that barrier), and its time is the maximum over all ranks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from commbench.analysis.stats import StopRule
from commbench.config.settings import TimingConfig
from commbench.sweep.agreement import agree_or_skip
from commbench.sweep.phases import PhaseClock
from commbench.sweep.world import World


class Timer(Protocol):
    def start(self) -> None: ...

    def stop(self) -> float:
        """Seconds since `start`, once the device has finished everything issued."""
        ...


class HostTimer:
    """perf_counter around the loop: right on CPU, where a collective returns when done."""

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self) -> float:
        return time.perf_counter() - self._t0


class CudaEventTimer:
    """CUDA events on the current stream: the GPU's own clock, not the launch time."""

    def __init__(self) -> None:
        self._begin = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._begin.record()

    def stop(self) -> float:
        self._end.record()
        self._end.synchronize()
        return self._begin.elapsed_time(self._end) / 1e3


def make_timer(device: torch.device) -> Timer:
    return CudaEventTimer() if device.type == "cuda" else HostTimer()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Measurement:
    """Per-operation seconds of every sample: `samples` is the max over ranks."""

    iters: int
    samples: np.ndarray  # [n]
    rank_samples: np.ndarray  # [n, world]
    stop: str


def repeat(run: Callable[[], object], iters: int) -> Callable[[], None]:
    """`iters` operations issued one after another: the eager sample."""

    def batch() -> None:
        for _ in range(iters):
            run()

    return batch


def capture(run: Callable[[], object], iters: int, device: torch.device) -> Callable[[], None]:
    """`iters` operations captured once in a CUDA graph; a sample replays it, as decode does.

    The operation runs once on the capture stream first, so nothing is set up lazily during
    capture. `thread_local`: other threads (the NCCL and commbench watchdogs) may use CUDA
    meanwhile. Not verified on a GPU in this project's CI (it has none): `make gpu-check`.
    """
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        run()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
        for _ in range(iters):
            run()
    torch.cuda.synchronize(device)
    return graph.replay


@dataclass(frozen=True)
class Batching:
    """How a sample's K operations are made: issued one after another, or captured once
    and replayed. Calibration times a batch made the same way as the samples', so K fits
    what a sample really costs (a graph replay can be far shorter than K eager calls)."""

    make: Callable[[Callable[[], object], int], Callable[[], None]]
    captured: bool = False  # making a batch captures a graph: the capture phase's time


EAGER = Batching(repeat)


def cuda_graphs(device: torch.device) -> Batching:
    return Batching(lambda run, iters: capture(run, iters, device), captured=True)


CALIBRATION_OPS = 2  # the last warm-up operations are timed, to choose K
# A warm-up stops early once its operations have lasted this long (seconds): what it waits
# for (lazy set-up in the first calls, caches, pages, a transport's buffers) is passed by
# then, and five 100 ms operations would cost half a point's sampling budget.
WARMUP_S = 0.1
# K is 1 without a calibration batch when a warm-up operation took this many times a
# sample's minimum: the margin covers a warm-up operation slower than a warm one.
CLEARLY_ONE = 2.0


def _timed_batch(
    batch: Callable[[], None],
    iters: int,
    timer: Timer,
    world: World,
    started: float,
    clock: PhaseClock,
) -> tuple[float, float, float]:
    """One sample on every rank: this rank's per-operation seconds, the slowest rank's,
    and the slowest rank's clock since `started`.

    The all_reduce of the times is a collective over the whole world, so it is also the
    barrier before the next sample: no rank starts it before every rank has finished this.
    """
    with clock("samples"):
        timer.start()
        batch()
        mine = timer.stop() / iters
    with clock("gather"):
        slowest, elapsed = world.max_floats([mine, time.perf_counter() - started]).tolist()
    return mine, slowest, elapsed


def choose_iters(per_op_s: float, timing: TimingConfig) -> int:
    """K so that one sample lasts at least `min_sample_ms`."""
    wanted = math.ceil(timing.min_sample_ms / 1e3 / max(per_op_s, 1e-9))
    return max(1, min(timing.max_iters, wanted))


def warm_up(
    run: Callable[[], object], ops: int, world: World, timer: Timer, ran_first: bool = False
) -> tuple[float, int]:
    """Up to `ops` untimed operations on every rank alike, fewer once the timed one says
    they would last WARMUP_S; returns one operation's seconds (0.0 when none was timed)
    and how many ran.

    The point's first operation is never the one timed: it may carry what a group sets up
    on first use (NCCL connects each algorithm's channels at its first collective: hundreds
    of milliseconds that say nothing about the operation), and neither the warm-up's length
    nor K may follow from it. `ran_first`: that first operation has just run on these
    buffers (the check's) and counts as one of `ops`. The next is timed (the fastest
    rank's: the others' include waiting for it to arrive), agreed in one all_reduce, and
    sets how many follow.
    """
    done = int(ran_first)
    if ops <= done:
        return 0.0, done
    if not ran_first:
        run()  # the point's first operation, untimed
        done += 1
        if ops <= done:
            return 0.0, done
    timer.start()
    run()
    op_s = -float(world.max_floats([-timer.stop()])[0])
    done += 1
    total = min(ops, 1 + warm_ops(op_s))
    for _ in range(total - done):
        run()
    return op_s, total


def warm_ops(op_s: float) -> int:
    """How many operations of `op_s` seconds last WARMUP_S (the point's first, untimed one,
    not counted)."""
    return math.ceil(WARMUP_S / max(op_s, 1e-9))


def measure(
    run: Callable[[], object],
    world: World,
    timing: TimingConfig,
    iters: int | None = None,
    *,
    batching: Batching = EAGER,
    clock: PhaseClock | None = None,
    ran_first: bool = False,
) -> Measurement:
    """Warm up (`ran_first`: see `warm_up`), choose K (unless given) from a batch made as
    the samples' are, make the sample's batch, resync the ranks, then sample until a stop
    rule fires.

    Each rank sees the same slowest-rank times, and the time budget is judged on the
    slowest rank's clock, so every rank stops after the same sample. Every rank's own
    times are gathered once, at the end.

    An operation that took a sample's minimum during the warm-up is calibrated on one
    operation, not two, and (eager) one that took twice that is not calibrated at all: K
    is 1. Making a batch can take each rank its own time (a graph capture does), so the
    ranks meet at a barrier right after a captured one (the calibration's and the
    samples') and the time budget starts after the samples' one, as nccl-tests does after
    instantiating its graph (src/common.cu, BenchTime: "Resync CPU, restart timing, launch
    cuda graph": Barrier(args); tim.reset()). Without it the first sample's slowest rank
    would carry the ranks' capture-time skew. An eager batch needs none: the barrier after
    the warm-up, then each all_reduce of times, keep the ranks in step.
    """
    clock = clock or PhaseClock()
    timer = make_timer(world.device)
    rule = StopRule(  # made before any timing: it looks up what it needs now
        min_samples=timing.min_samples,
        max_samples=timing.max_samples,
        target_ci=timing.target_ci,
        max_seconds=timing.max_seconds,
    )
    calibration_ops = 0 if iters is not None else max(1, min(CALIBRATION_OPS, timing.warmup))
    min_sample_s = timing.min_sample_ms / 1e3
    ops = timing.warmup - calibration_ops
    if calibration_ops and not ran_first:
        ops = max(ops, 1)  # a calibration never times the point's first operation
    with clock("warmup"):
        op_s, done = warm_up(run, ops, world, timer, ran_first)
        if iters is None and not batching.captured and op_s >= CLEARLY_ONE * min_sample_s:
            iters = 1  # nothing to calibrate: one operation outlasts a sample's minimum
            for _ in range(min(calibration_ops, 1 + warm_ops(op_s) - done)):
                run()  # the calibration's share of the warm-up, untimed
    if op_s >= min_sample_s:
        calibration_ops = min(calibration_ops, 1)
    with clock("barrier"):
        synchronize(world.device)
        world.barrier()
    if iters is None:
        with clock("calibrate"):
            calibration_clock = PhaseClock()  # its time is the calibrate phase's alone
            probe = _ready(batching, run, calibration_ops, world, calibration_clock)
            _, slowest, _ = _timed_batch(
                probe, calibration_ops, timer, world, time.perf_counter(), calibration_clock
            )
        iters = choose_iters(slowest, timing)
    batch = _ready(batching, run, iters, world, clock)
    return _sample(batch, iters, timer, world, clock, rule)


def _sample(
    batch: Callable[[], None],
    iters: int,
    timer: Timer,
    world: World,
    clock: PhaseClock,
    rule: StopRule,
) -> Measurement:
    """Samples of `batch` until `rule` ends them; every rank's own times gathered last."""
    started = time.perf_counter()
    mine: list[float] = []
    slowest_times: list[float] = []
    while True:
        own, slowest, elapsed = _timed_batch(batch, iters, timer, world, started, clock)
        mine.append(own)
        slowest_times.append(slowest)
        with clock("stop_rule"):
            reason = rule.add(slowest, elapsed)
        if reason:
            with clock("gather"):
                rank_samples = world.gather_floats(mine).numpy().T  # [sample, rank]
            return Measurement(iters, np.array(slowest_times), rank_samples, reason)


def _ready(
    batching: Batching, run: Callable[[], object], iters: int, world: World, clock: PhaseClock
) -> Callable[[], None]:
    """A batch of `iters` operations, made on every rank (or the point skipped on all, if
    making it ran out of memory on any), the ranks in step again after it.

    A captured graph is replayed once, untimed, after the ranks agree: its first replay
    uploads it to the device, which no sample should carry. Only then do the ranks meet
    at a barrier: making an eager batch takes no time.
    """
    if not batching.captured:
        return batching.make(run, iters)
    with clock("capture"):
        batch = agree_or_skip(world, "graph capture", lambda: batching.make(run, iters))
        batch()
    with clock("barrier"):
        synchronize(world.device)
        world.barrier()
    return batch
