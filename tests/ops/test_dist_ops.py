"""Every collective x variant x dtype gives the exact expected output on real gloo worlds.

One world of 2 ranks and one of 4 run every test's function (`two_ranks`, `four_ranks`)."""

from __future__ import annotations

import itertools

import pytest
import torch
from support.distworld import SharedWorld

from commbench.ops import REGISTRY, bind
from commbench.ops.arena import Arena
from commbench.ops.base import GroupContext
from commbench.point import Point
from commbench.sweep.exact_check import check

DTYPES = ("bfloat16", "float16", "float32")
TOKENS = (1, 5, 8, 13)  # 1, 5 and 13 are uneven for every tp above 1
HIDDEN = 24


VOCABS = (24, 25)  # logits_gather: divisible by every tp, and odd (SGLang's list fallback)
SKEWS = (0.0, 1.2)  # the routed collectives: uniform and skewed routing of 8 experts, top-2
EVERY_EXPERT = (8, 8, 0.0)  # top-8 of 8: every token to every rank, even chunks at T=8


def _points(world_size: int) -> list[Point]:
    tps = [tp for tp in (1, 2, 4) if world_size % tp == 0]
    points = []
    for tp, (name, collective), dtype, tokens in itertools.product(
        tps, REGISTRY.items(), DTYPES, TOKENS
    ):
        for variant in collective.variants:
            if name == "logits_gather":
                points += [
                    Point(name, variant, dtype, tokens, 0, world_size, tp, vocab=vocab)
                    for vocab in VOCABS
                ]
            elif collective.routed:
                points += [
                    Point(name, variant, dtype, tokens, HIDDEN, world_size, tp, 0, *routing)
                    for routing in [(8, 2, skew) for skew in SKEWS] + [EVERY_EXPERT]
                ]
            else:
                points.append(Point(name, variant, dtype, tokens, HIDDEN, world_size, tp))
    return points


def _check_all(world) -> list[tuple[Point, bool, str, str, str]]:
    outcomes = []
    for point in _points(world.size):
        bound = bind(point, world.split(point.tp), Arena(world.device))
        outcomes.append((point, check(bound, world), bound.api, bound.defect, bound.note))
    return outcomes


def _scrambled_by_nccl(point: Point) -> bool:
    """SGLang's list logits gather with a vocab tp does not divide: ProcessGroupNCCL writes
    raw bytes into non-contiguous views (ops/all_gather.py, list_gather); T = 1 is immune.
    gloo runs it correctly; those rows carry NCCL's expected defect as a note."""
    return (
        point.collective == "logits_gather"
        and point.variant == "list"
        and point.vocab % point.tp != 0
        and point.tokens > 1
    )


@pytest.fixture(scope="module")
def two_ranks() -> SharedWorld:
    return SharedWorld(
        2,
        {
            "split": _same_split,  # first: nothing built before it
            "exact": _check_all,
            "wrong": _wrong_rank_chunk,
            "round_trip": _round_trip,
            "misrouted": _misrouted,
        },
    )


@pytest.fixture(scope="module")
def four_ranks() -> SharedWorld:
    return SharedWorld(4, {"exact": _check_all, "combine": _dispatch_then_combine})


@pytest.mark.parametrize("world_size", [2, 4])
def test_every_variant_is_exact(world_size: int, request: pytest.FixtureRequest) -> None:
    world = request.getfixturevalue({2: "two_ranks", 4: "four_ranks"}[world_size])
    per_rank = world("exact")
    assert all(outcomes == per_rank[0] for outcomes in per_rank), "ranks disagree"
    assert [point for point, ok, *_ in per_rank[0] if not ok] == []
    assert all(defect == "" for *_, defect, _ in per_rank[0])  # none expected on gloo
    expected_on_nccl = "on NCCL this path is expected"
    predicted = {point for point, *_, note in per_rank[0] if expected_on_nccl in note}
    assert predicted == {p for p in _points(world_size) if _scrambled_by_nccl(p)} != set()
    assert len(per_rank[0]) == len(_points(world_size))
    apis = {(p.collective, p.variant): api for p, _, api, *_ in per_rank[0] if p.tokens % p.tp == 0}
    tensor_api = "all_gather_single" if hasattr(torch.distributed, "all_gather_single") else None
    if tensor_api:  # torch 2.13 renamed the tensor forms: the newest name is what runs
        assert apis[("all_gather", "tensor")] == "all_gather_single"
        assert apis[("reduce_scatter", "tensor")] == "reduce_scatter_single"
    routed = {p.variant: api for p, _, api, *_ in per_rank[0] if p.experts and p.tokens == 8}
    assert routed["list"] == "all_to_all"  # only with even chunks does gloo take the list


def _wrong_rank_chunk(world) -> tuple[bool, bool]:
    """A check that cannot fail is worthless: corrupt one rank's output and expect failure."""
    point = Point("all_gather", "tensor", "bfloat16", 8, HIDDEN, world.size, world.size)
    ctx: GroupContext = world.split(world.size)
    bound = bind(point, ctx, Arena(world.device))
    honest = check(bound, world)
    run = bound.run

    def swapped() -> None:
        run()
        if world.rank == 1:
            bound.output.copy_(bound.output.flip(0))

    bound.run = swapped
    return honest, check(bound, world)


def test_check_detects_a_wrong_result_on_any_rank(two_ranks: SharedWorld) -> None:
    per_rank = two_ranks("wrong")
    assert per_rank == [(True, False), (True, False)]


def test_groups_are_built_once_per_split(two_ranks: SharedWorld) -> None:
    assert two_ranks("split") == [True, True]


def _same_split(world) -> bool:
    return world.split(2) is world.split(2)


def _bind(world, name: str, variant: str, tokens: int):
    point = Point(name, variant, "float32", tokens, HIDDEN, world.size, world.size)
    return bind(point, world.split(world.size), Arena(world.device))  # an arena each: all live


def _round_trip(world) -> bool:
    """reduce_scatter then all_gather, through the catalogue's own variants, gives exactly
    what one all_reduce of the same [T, H] gives (padded rows aside), in both forms."""
    ok = True
    for variant, tokens in itertools.product(("list", "tensor"), (5, 8)):
        scatter = _bind(world, "reduce_scatter", variant, tokens)
        gather = _bind(world, "all_gather", variant, tokens)
        reduce = _bind(world, "all_reduce", "tensor", tokens)
        scatter.fill()
        reduce.fill()
        scatter.run()
        reduce.run()
        gather.inputs[0].copy_(scatter.output)
        gather.run()
        ok &= torch.equal(gather.output[:tokens], reduce.output)
    return ok


def test_the_round_trip_equals_one_all_reduce(two_ranks: SharedWorld) -> None:
    assert two_ranks("round_trip") == [True, True]


def _routed(world, name: str, variant: str, tokens: int, skew: float):
    point = Point(name, variant, "bfloat16", tokens, HIDDEN, world.size, world.size, 0, 8, 2, skew)
    return bind(point, world.split(world.size), Arena(world.device))


def _dispatch_then_combine(world) -> bool:
    """The combine sends every dispatched row back where it came from: through the
    catalogue's own variants, each rank gets exactly its dispatch input back."""
    ok = True
    for variant, tokens, skew in itertools.product(("list", "tensor", "padded"), (5, 13), SKEWS):
        dispatch = _routed(world, "all_to_all", variant, tokens, skew)
        combine = _routed(world, "all_to_all_combine", variant, tokens, skew)
        dispatch.fill()
        dispatch.run()
        combine.inputs[0].copy_(dispatch.output)
        combine.run()
        ok &= torch.equal(combine.output, dispatch.inputs[0])
    return ok


def test_combine_returns_what_dispatch_sent(four_ranks: SharedWorld) -> None:
    assert four_ranks("combine") == [True] * 4


def _misrouted(world) -> list[tuple[bool, bool]]:
    """Each all_to_all form, honest and then with rank 1's received rows reordered."""
    outcomes = []
    for variant in ("list", "tensor", "padded"):
        bound = _routed(world, "all_to_all", variant, 13, 1.2)
        honest = check(bound, world)
        run = bound.run

        def reordered(run=run, bound=bound) -> None:
            run()
            if world.rank == 1:
                bound.output.copy_(bound.output.roll(1, dims=0))

        bound.run = reordered
        outcomes.append((honest, check(bound, world)))
    return outcomes


def test_all_to_all_check_detects_misplaced_rows(two_ranks: SharedWorld) -> None:
    assert two_ranks("misrouted") == [[(True, False)] * 3] * 2
