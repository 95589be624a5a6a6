"""Does commbench report the collective's time, or its own?

In one world, for every collective and variant at the smallest and the largest size,
this alternates commbench's own measurement (the ops catalogue plus `timing.measure`,
exactly what `sweep` runs) with a bare loop that calls torch.distributed directly:
world barrier, `perf_counter`, K calls, max over ranks. Both take the same K and the
same number of samples; rounds alternate which goes first. The figure is the ratio of
the medians (commbench / bare); the goal is at most 1.05.

    python benchmarks/overhead.py --nproc 2             # starts its own gloo world
    torchrun --nproc-per-node 8 benchmarks/overhead.py  # on a GPU node

On GPUs the bare loop times with CUDA events, as commbench does (docs/method.md, "Timing").
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch
import torch.distributed as dist

from commbench.config.settings import load_config
from commbench.ops import REGISTRY, bind
from commbench.ops.arena import Arena
from commbench.point import Point
from commbench.sweep.exact_check import check
from commbench.sweep.launch import is_launched, launch_local
from commbench.sweep.timing import make_timer, measure, synchronize
from commbench.sweep.world import World, close_world, init_world


def _newest(old: str, new: str):
    return getattr(dist, new) if hasattr(dist, new) else getattr(dist, old)


def bare_call(point: Point, bound, group):
    """The operation as a user's own script would issue it, with no harness in between."""
    n = point.tp
    inp, out = bound.inputs[0], bound.output
    calls = {
        ("all_gather", "list"): partial(dist.all_gather, list(out.tensor_split(n)), inp),
        ("all_gather", "tensor"): partial(
            _newest("all_gather_into_tensor", "all_gather_single"), out, inp
        ),
        ("reduce_scatter", "list"): partial(dist.reduce_scatter, out, list(inp.tensor_split(n))),
        ("reduce_scatter", "tensor"): partial(
            _newest("reduce_scatter_tensor", "reduce_scatter_single"), out, inp
        ),
        ("all_reduce", "tensor"): partial(dist.all_reduce, inp),
    }
    return partial(calls[(point.collective, point.variant)], group=group)


def bare_samples(call, iters: int, samples: int, world: World) -> np.ndarray:
    timer = make_timer(world.device)
    times = []
    for _ in range(samples):
        synchronize(world.device)
        dist.barrier(group=world.control)
        timer.start()
        for _ in range(iters):
            call()
        mine = torch.tensor([timer.stop() / iters], dtype=torch.float64)
        dist.all_reduce(mine, op=dist.ReduceOp.MAX, group=world.control)
        times.append(mine.item())
    return np.array(times)


def worker(args: argparse.Namespace) -> None:
    config = load_config(None, {"hidden": [args.hidden], "dtypes": [args.dtype]})
    world = init_world(config.backend)
    try:
        tp = world.size
        arena = Arena(world.device)
        rows = []
        for collective in config.collectives:  # the default sweep's
            for variant in REGISTRY[collective].variants:
                for tokens in args.tokens:
                    point = Point(
                        collective, variant, args.dtype, tokens, args.hidden, world.size, tp
                    )
                    ctx = world.split(tp)
                    bound = bind(point, ctx, arena)
                    assert check(bound, world), point.describe()
                    pilot = measure(bound.run, world, config.timing)  # fixes K and n
                    call = bare_call(point, bound, ctx.group)
                    ours, bare = [], []
                    for round_ in range(args.rounds):
                        for turn in (round_ % 2, 1 - round_ % 2):  # alternate who goes first
                            if turn == 0:
                                m = measure(bound.run, world, config.timing)
                                ours.append(np.median(m.samples))
                            else:
                                times = bare_samples(call, pilot.iters, len(pilot.samples), world)
                                bare.append(np.median(times))
                    rows.append((point, np.median(ours) * 1e6, np.median(bare) * 1e6))
        if world.rank == 0:
            print(
                f"world {world.size}, backend {world.backend}, {args.dtype}, H={args.hidden}, "
                f"{args.rounds} rounds"
            )
            print(
                f"{'collective':15} {'variant':7} {'tokens':>6} {'commbench us':>13} "
                f"{'bare us':>10} {'ratio':>6}"
            )
            for point, ours_us, bare_us in rows:
                print(
                    f"{point.collective:15} {point.variant:7} {point.tokens:6d} "
                    f"{ours_us:13.1f} {bare_us:10.1f} {ours_us / bare_us:6.3f}"
                )
            ratios = np.array([o / b for _, o, b in rows])
            print(
                f"ratio: median {np.median(ratios):.3f}, max {ratios.max():.3f}, "
                f"geomean {np.exp(np.log(ratios).mean()):.3f}"
            )
    finally:
        close_world()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2, help="ranks to start without torchrun")
    parser.add_argument(
        "--tokens",
        type=lambda s: [int(t) for t in s.split(",")],
        default=[8, 2048],
        help="token counts (multiples of the world size)",
    )
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--rounds", type=int, default=6)
    args, _ = parser.parse_known_args()
    if is_launched():
        worker(args)
    else:
        started = time.perf_counter()
        code = launch_local(args.nproc, [__file__, *_without_nproc()])
        print(f"wall time {time.perf_counter() - started:.0f} s")
        raise SystemExit(code)


def _without_nproc() -> list[str]:
    import sys

    argv = sys.argv[1:]
    if "--nproc" in argv:
        i = argv.index("--nproc")
        del argv[i : i + 2]
    return argv


if __name__ == "__main__":
    main()
