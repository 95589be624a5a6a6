"""The arena: every point's buffers are views of one allocation, sized for the largest point.

Bound in one process as rank 3 of a fake 8-rank world (uneven chunks on most splits), for
every point of a sweep with every collective, both variants, odd token counts and vocabs.
"""

from __future__ import annotations

import itertools
import re
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.testing._internal.distributed.fake_pg import FakeStore

from commbench.config.settings import load_config
from commbench.ops import REGISTRY, bind, footprint
from commbench.ops.arena import ALIGN, META, Arena
from commbench.point import Point
from commbench.routing import route
from commbench.sweep.plan import build_plan
from commbench.sweep.world import World

OVERRIDES = {
    "collectives": list(REGISTRY),
    "dtypes": ["bfloat16", "float32"],
    "tokens": [1, 7, 128, 2048],
    "hidden": [4096, 7168],
    "vocab": [129280, 128257],
    "variants": ["list", "tensor", "padded"],
    "moe": {"experts": [8], "topk": [2], "skew": [0.0, 1.2]},
}


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    dist.init_process_group("fake", rank=3, world_size=8, store=FakeStore())
    try:
        yield World(3, 8, 0, "fake", torch.device("cpu"), control=None)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def plan(world: World) -> list[Point]:
    return build_plan(load_config(None, OVERRIDES), world.size)


def buffers(point: Point, world: World, arena: Arena) -> list[torch.Tensor]:
    bound = bind(point, world.split(point.tp), arena)
    return [*bound.inputs, bound.output, *bound.scratch]


def test_every_point_is_views_of_one_allocation_sized_once(world: World, plan: list[Point]):
    sizes = {point: footprint(point, world.split(point.tp)).buffers for point in plan}
    arena = Arena(torch.device("cpu"))
    arena.reserve(max(sizes.values()))
    base = arena.empty((1,), torch.uint8).data_ptr()  # where the allocation starts
    assert arena.capacity == max(sizes.values())
    for point in plan:
        tensors = buffers(point, world, arena)
        spans = set()
        for tensor in (t for t in tensors if t.numel()):  # an empty chunk owns no memory
            assert tensor.untyped_storage().data_ptr() == base, point.describe()
            offset = tensor.data_ptr() - base
            assert offset % ALIGN == 0, point.describe()
            nbytes = tensor.numel() * tensor.element_size()
            assert offset + nbytes <= arena.capacity
            spans.add((offset, offset + nbytes))
        ordered = sorted(spans)  # distinct buffers never overlap (all_reduce: one buffer)
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(ordered))
        assert arena.used == sizes[point]  # the measured footprint is what binding takes
        assert arena.capacity == max(sizes.values())  # never grown, never reallocated


def test_footprint_is_the_buffers_rounded_to_alignment(world: World, plan: list[Point]):
    for point in plan:
        arena = Arena(META)
        tensors = buffers(point, world, arena)
        distinct = {id(t): t.numel() * t.element_size() for t in tensors}  # all_reduce: one
        padded = sum(-(-n // ALIGN) * ALIGN for n in distinct.values())
        assert padded - ALIGN < footprint(point, world.split(point.tp)).buffers <= padded
        assert all(t.device == META for t in tensors)  # measuring allocates nothing


def test_shapes_are_those_of_the_point(world: World, plan: list[Point]):
    arena = Arena(torch.device("cpu"))
    for point in plan:
        bound = bind(point, world.split(point.tp), arena)
        width = point.hidden or bound.padded_vocab
        rows = bound.padded_tokens
        if point.collective in ("all_gather", "all_reduce"):
            assert tuple(bound.output.shape) == (rows, width)
        elif point.collective == "reduce_scatter":
            assert tuple(bound.inputs[0].shape) == (rows, width)
        elif point.experts:  # what the routing sends this rank, or tp chunks of capacity
            routing = route(point.tokens, point.tp, point.experts, point.topk, point.skew)
            matrix = routing.matrix if point.collective == "all_to_all" else routing.matrix.T
            received = matrix[:, world.split(point.tp).rank].sum()
            rows = point.tp * routing.capacity if point.variant == "padded" else received
            assert tuple(bound.output.shape) == (rows, width)
        else:  # logits_gather: [T, V] gathered from [T, V/tp]
            assert tuple(bound.output.shape) == (point.tokens, width)
        assert bound.output.dtype == bound.inputs[0].dtype


def test_growing_takes_what_the_largest_point_needs_and_never_shrinks(
    world: World, plan: list[Point]
):
    arena = Arena(torch.device("cpu"))
    largest = 0
    for point in sorted(plan, key=lambda p: footprint(p, world.split(p.tp)).buffers):
        buffers(point, world, arena)
        largest = max(largest, arena.used)
        assert arena.capacity == largest  # exactly what the largest point so far needs


GIB = 2**30


def _mapped_bytes() -> int:
    """The address space this process maps now (VmSize)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmSize:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024


def test_growing_frees_the_old_buffer_before_taking_the_new() -> None:
    """Growing from OLD to NEW bytes, the process never holds both: with the address
    space capped below what both need (and above what NEW alone needs), growing works."""
    old, new = GIB, 3 * GIB // 2
    arena = Arena(torch.device("cpu"))
    arena.reserve(old)  # mapped, never written: costs no memory
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_mapped_bytes() + new - old // 2, hard))
    try:
        arena.reserve(new)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert arena.capacity == new


def test_a_list_forms_hidden_flat_buffer_is_in_its_footprint(world: World, plan: list[Point]):
    """ProcessGroupNCCL stacks a list of equal chunks into one flat buffer at every call:
    the gathered output (all_gather) or the input (reduce_scatter), once more. Its list
    all_to_all sends and receives each chunk in place (ncclSend/ncclRecv per peer): none."""
    flattening = ("all_gather", "reduce_scatter", "logits_gather")
    for point in plan:
        fp = footprint(point, world.split(point.tp))
        bound = bind(point, world.split(point.tp), Arena(META))
        equal = point.tokens % point.tp == 0 if point.hidden else point.vocab % point.tp == 0
        if point.variant == "list" and point.collective in flattening and equal:
            moved = bound.inputs[0] if point.collective == "reduce_scatter" else bound.output
            assert fp.hidden == moved.numel() * moved.element_size(), point.describe()
        else:
            assert fp.hidden == 0, point.describe()
        assert fp.total == fp.buffers + fp.hidden


def test_a_full_arena_refuses_instead_of_writing_past_its_end() -> None:
    arena = Arena(torch.device("cpu"))
    arena.reserve(ALIGN + 8)
    arena.empty((2,), torch.float32)
    with pytest.raises(RuntimeError, match="has no room"):
        arena.empty((4,), torch.float32)


def test_an_empty_buffer_needs_no_storage() -> None:
    """A rank the routing sends nothing binds [0, H] buffers: its footprint is 0 bytes, and
    an arena that never reserved anything still hands them out."""
    arena = Arena(torch.device("cpu"))
    arena.reserve(0)
    chunk = arena.empty((0, 24), torch.bfloat16)
    assert chunk.shape == (0, 24) and arena.used == 0
