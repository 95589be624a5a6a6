"""Is a sweep's memory that of its largest point?

Runs a sweep, then each of its largest points alone (those whose buffers need at least
half the most bytes on rank 0, found by binding every point of the plan on the `meta`
device as rank 0 of a fake world: their transient memory, such as a list form's hidden
copy, differs), and compares what meta.json records: each rank's peak RSS, its growth
over the RSS the rank had once its process groups existed, and the arena's size. Goal:
the sweep's peak within 1.1x of the largest of those points' peaks alone.

    python benchmarks/memory.py [--nproc 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from torch.testing._internal.distributed.fake_pg import FakeStore

from commbench.config.settings import load_config
from commbench.ops import footprint
from commbench.point import Point
from commbench.sweep.plan import build_plan
from commbench.sweep.world import World

GOAL = 1.10
MIB = 2**20


def largest_points(nproc: int) -> list[Point]:
    """The default plan's points with the largest buffers on rank 0, as a sweep binds them."""
    config = load_config(None)
    dist.init_process_group("fake", rank=0, world_size=nproc, store=FakeStore())
    try:
        world = World(0, nproc, 0, "fake", torch.device("cpu"), control=None)
        sizes = {p: footprint(p, world.split(p.tp)).buffers for p in build_plan(config, nproc)}
    finally:
        dist.destroy_process_group()
    return [point for point, size in sizes.items() if size >= max(sizes.values()) / 2]


def alone(point: Point) -> list[str]:
    """The sweep flags that measure `point` and nothing else."""
    flags = ["--collectives", point.collective, "--variants", point.variant]
    flags += ["--dtypes", point.dtype, "--tokens", str(point.tokens), "--tp", str(point.tp)]
    return flags + (
        ["--hidden", str(point.hidden)] if point.hidden else ["--vocab", str(point.vocab)]
    )


def sweep(nproc: int, out: Path, flags: list[str]) -> dict:
    command = [sys.executable, "-m", "commbench", "sweep", "--nproc", str(nproc)]
    subprocess.run([*command, "--out", str(out), *flags], check=True, capture_output=True)
    return json.loads((out / "meta.json").read_text())["memory"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        whole = sweep(args.nproc, Path(tmp) / "sweep", [])
        singles = {
            point: sweep(args.nproc, Path(tmp) / f"alone-{number}", alone(point))
            for number, point in enumerate(largest_points(args.nproc))
        }
    print(f"{'':52} {'peak MiB':>9} {'growth MiB':>11} {'arena MiB':>10}")

    def line(name: str, memory: dict) -> None:
        peak, growth, arena = (
            max(memory[key]) / MIB for key in ("rss_peak_bytes", "rss_growth_bytes", "arena_bytes")
        )
        print(f"{name:52} {peak:9.1f} {growth:11.1f} {arena:10.1f}")

    line("the sweep", whole)
    for point, memory in singles.items():
        line(point.describe() + " alone", memory)
    largest = max(max(memory["rss_peak_bytes"]) for memory in singles.values())
    ratio = max(whole["rss_peak_bytes"]) / largest
    verdict = "met" if ratio <= GOAL else "MISSED"
    print(f"sweep peak / largest point's peak alone: {ratio:.2f} (goal <= {GOAL}: {verdict})")


if __name__ == "__main__":
    main()
