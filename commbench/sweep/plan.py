"""Config -> the ordered list of Points to measure. Pure and deterministic: no processes,
no torch (the launcher validates a sweep with it before starting anything)."""

from __future__ import annotations

import random

from commbench.catalogue import CATALOGUE
from commbench.config.settings import SweepConfig
from commbench.errors import UsageError
from commbench.point import Point
from commbench.routing import check_routing

Routing = tuple[int, int, float]  # experts, topk, skew


def resolve_tp(config: SweepConfig, world_size: int) -> list[int]:
    """The group sizes to sweep; each must divide the world (dp = world / tp)."""
    if config.tp is None:
        return [n for n in range(2, world_size + 1) if world_size % n == 0] or [world_size]
    for tp in config.tp:
        if world_size % tp:
            raise UsageError(f"tp: {tp} does not divide the world size {world_size}")
    return sorted(set(config.tp))


def widths(config: SweepConfig, collective: str) -> list[tuple[int, int]]:
    """(hidden, vocab) pairs a collective is swept over: as wide as the list its catalogue
    entry names (the logits: the vocabulary; everything else: the hidden size)."""
    if CATALOGUE[collective].width == "vocab":
        if not config.vocab:
            raise UsageError(f"vocab: {collective} needs at least one vocab size (--vocab)")
        return [(0, vocab) for vocab in config.vocab]
    return [(hidden, 0) for hidden in config.hidden]


def routings(config: SweepConfig, collective: str, tp: int) -> list[Routing]:
    """(experts, topk, skew) a collective is swept over at group size `tp`: the [moe]
    routings for a routed collective, none (zeros) for the others."""
    if not CATALOGUE[collective].routed:
        return [(0, 0, 0.0)]
    moe = config.moe
    if moe is None:
        raise UsageError(
            f"experts: {collective} needs a MoE routing (--experts, --topk, --skew or [moe])"
        )
    for experts in moe.experts:
        for topk in moe.topk:
            if problem := check_routing(experts, topk, tp):
                raise UsageError(problem)
    return [(e, k, s) for e in moe.experts for k in moe.topk for s in moe.skew]


def build_plan(config: SweepConfig, world_size: int) -> list[Point]:
    """Every point of the sweep, grouped by split so each split's groups are built once.

    Within a shape the variants are adjacent (list, then tensor), so both forms of one
    comparison are measured moments apart under the same machine conditions.
    """
    points = [
        Point(collective, variant, dtype, tokens, hidden, world_size, tp, vocab, *routing)
        for tp in resolve_tp(config, world_size)
        for collective in config.collectives
        for dtype in config.dtypes
        for hidden, vocab in widths(config, collective)
        for routing in routings(config, collective, tp)
        for tokens in config.tokens
        for variant in CATALOGUE[collective].variants
        if variant in config.variants
    ]
    if not points:
        raise UsageError(
            f"variants: {config.variants} has nothing to measure"
            f" for collectives {config.collectives}"
        )
    return points


def round_order(plan: list[Point], rounds: int, seed: int) -> list[tuple[int, Point]]:
    """(round, point) in measuring order: the plan once, or `rounds` seeded shuffles of it.

    Shuffling each round decorrelates slow drifts of the machine from the points, so
    the spread between rounds shows the run-to-run noise that back-to-back samples hide.
    """
    if rounds == 1:
        return [(0, point) for point in plan]
    rng = random.Random(seed)
    order = []
    for round_ in range(rounds):
        shuffled = list(plan)
        rng.shuffle(shuffled)
        order += [(round_, point) for point in shuffled]
    return order
