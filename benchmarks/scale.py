"""What do planning and group construction cost in a big world?

For each world size and group layout, one fresh process stands as rank 0 of the world
with PyTorch's fake process group and times what every rank does before its first
measurement: `build_plan` for the default sweep (every divisor tp > 1 of the world), then
`World.split` for every tp of the plan, which creates every dp group of each split once.
The memory figure is the growth of the process's peak RSS over both (ru_maxrss, in KiB on
Linux), in a fresh process per case so an earlier case's peak does not hide it.

    python benchmarks/scale.py                      # worlds 64 and 512
    python benchmarks/scale.py --worlds 64,512,4096

The fake backend does the group bookkeeping without any peer or communicator, so these
are commbench's and torch.distributed's own costs, not NCCL's communicator setup.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

import torch
import torch.distributed as dist
from torch.testing._internal.distributed.fake_pg import FakeStore

from commbench.config.settings import load_config
from commbench.sweep.plan import build_plan
from commbench.sweep.world import World

LAYOUTS = ("contiguous", "strided")


def case(size: int, layout: str) -> tuple[int, int, int, float, float, float]:
    """(points, splits, groups created, plan ms, groups ms, peak RSS growth MiB)."""
    config = load_config(None)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    plan = build_plan(config, size)
    planned = time.perf_counter()
    splits = sorted({point.tp for point in plan})
    dist.init_process_group("fake", rank=0, world_size=size, store=FakeStore())
    try:
        world = World(0, size, 0, "fake", torch.device("cpu"), control=None, layout=layout)
        split_started = time.perf_counter()
        for tp in splits:
            world.split(tp)
        split_ms = (time.perf_counter() - split_started) * 1e3
        groups = dist.distributed_c10d._world.group_count - 1  # less the default group
    finally:
        dist.destroy_process_group()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return len(plan), len(splits), groups, (planned - started) * 1e3, split_ms, rss_growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--worlds",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[64, 512],
        help="world sizes",
    )
    args = parser.parse_args()
    cases = [(size, layout) for size in args.worlds for layout in LAYOUTS]
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        results = pool.starmap(case, cases, chunksize=1)  # a fresh process per case
    print(f"torch {torch.__version__}, fake process group, rank 0, default sweep")
    print(
        f"{'world':>6} {'layout':10} {'points':>6} {'splits':>6} {'groups':>6} "
        f"{'plan ms':>8} {'groups ms':>9} {'peak RSS +MiB':>13}"
    )
    for (size, layout), row in zip(cases, results, strict=True):
        points, splits, groups, plan_ms, split_ms, rss = row
        print(
            f"{size:6d} {layout:10} {points:6d} {splits:6d} {groups:6d} "
            f"{plan_ms:8.2f} {split_ms:9.1f} {rss:13.1f}"
        )


if __name__ == "__main__":
    main()
