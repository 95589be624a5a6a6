"""Groups of 64- and 512-rank worlds, built in one process with PyTorch's fake process group.

The fake backend lets this process stand as any one rank of a large world: `new_group`
does the same bookkeeping as with a real backend (every rank creates every group, in
order) with no peer to wait for. Its state is process-global, so each case initialises
it and destroys it again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.distributed as dist
from torch.testing._internal.distributed.fake_pg import FakeStore

from commbench.config.settings import load_config
from commbench.sweep.plan import build_plan
from commbench.sweep.world import World, group_ranks

LAYOUTS = ["contiguous", "strided"]
SPLITS = {64: [2, 4, 8, 16, 32, 64], 512: [2, 4, 8, 16, 32, 64, 128, 256, 512]}
RANKS = {64: [0, 37, 63], 512: [0, 301, 511]}  # first, one in the middle, last
WORLDS = [(size, rank, layout) for size in SPLITS for rank in RANKS[size] for layout in LAYOUTS]
SIZE_TP = [(size, tp) for size, splits in SPLITS.items() for tp in splits]


def new_group_calls() -> int:
    """Groups created since init, the default group included (torch numbers groups by it)."""
    return dist.distributed_c10d._world.group_count


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    size, rank, layout = request.param
    dist.init_process_group("fake", rank=rank, world_size=size, store=FakeStore())
    try:
        assert new_group_calls() == 1, "groups of an earlier case survived its destroy"
        yield World(rank, size, 0, "fake", torch.device("cpu"), control=None, layout=layout)
    finally:
        dist.destroy_process_group()


def expected(rank: int, size: int, tp: int, layout: str) -> tuple[tuple[int, ...], int]:
    """This rank's group and its index in it, worked out from the rank alone."""
    dp = size // tp
    if layout == "contiguous":
        first = rank - rank % tp
        return tuple(range(first, first + tp)), rank % tp
    return tuple(range(rank % dp, size, dp)), rank // dp


@pytest.mark.parametrize("world", WORLDS, indirect=True, ids=lambda case: "-".join(map(str, case)))
def test_every_split_of_the_plan_gives_this_rank_its_group_once(world: World) -> None:
    splits = sorted({point.tp for point in build_plan(load_config(None), world.size)})
    assert splits == SPLITS[world.size]  # the default sweep: every divisor above 1
    for tp in splits:
        before = new_group_calls()
        ctx = world.split(tp)
        assert new_group_calls() - before == world.size // tp  # every dp group, once
        assert world.split(tp) is ctx
        assert new_group_calls() - before == world.size // tp
        assert (ctx.ranks, ctx.rank) == expected(world.rank, world.size, tp, world.layout)
        assert dist.get_process_group_ranks(ctx.group) == list(ctx.ranks)
        assert dist.get_rank(ctx.group) == ctx.rank


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("size", "tp"), SIZE_TP)
def test_groups_partition_the_world(size: int, tp: int, layout: str) -> None:
    groups = group_ranks(size, tp, layout)
    assert len(groups) == size // tp
    assert all(len(group) == tp for group in groups)
    assert sorted(rank for group in groups for rank in group) == list(range(size))


@pytest.mark.parametrize(("size", "tp"), SIZE_TP)
def test_strided_groups_take_one_rank_from_each_contiguous_block(size: int, tp: int) -> None:
    blocks = group_ranks(size, size // tp, "contiguous")  # tp blocks of dp consecutive ranks
    block_of = {rank: index for index, block in enumerate(blocks) for rank in block}
    for group in group_ranks(size, tp, "strided"):
        assert sorted(block_of[rank] for rank in group) == list(range(tp))


@pytest.mark.parametrize("world", [(64, 37, "strided")], indirect=True, ids=["64-37-strided"])
def test_a_released_split_gives_its_group_back(world: World) -> None:
    """After a split's last point the runner releases it: torch no longer knows the group."""
    ctx = world.split(8)
    assert dist.get_process_group_ranks(ctx.group) == list(ctx.ranks)
    world.release(8)
    with pytest.raises(KeyError):
        dist.get_process_group_ranks(ctx.group)
    world.release(8)  # a second release is harmless
