"""The catalogue of collectives: one module per family, one registry line each."""

from dataclasses import replace

from commbench.buffers import META, Arena
from commbench.ops import (
    all_gather,
    all_reduce,
    all_to_all,
    all_to_all_combine,
    logits_gather,
    reduce_scatter,
)
from commbench.ops.base import Bound, Collective, GroupContext
from commbench.point import Point

REGISTRY: dict[str, Collective] = {
    op.COLLECTIVE.name: op.COLLECTIVE
    for op in (
        all_gather,
        reduce_scatter,
        all_reduce,
        logits_gather,
        all_to_all,
        all_to_all_combine,
    )
}


def footprint(point: Point, ctx: GroupContext) -> int:
    """Bytes the point's buffers take on this rank, found by binding it to nothing."""
    arena = Arena(META)
    REGISTRY[point.collective].variants[point.variant](point, replace(ctx, device=META), arena)
    return arena.used


def bind(point: Point, ctx: GroupContext, arena: Arena, need: int | None = None) -> Bound:
    """The point's variant on this rank, its buffers views of `arena` (grown if needed);
    `need` is its footprint when the caller has it already."""
    arena.reserve(footprint(point, ctx) if need is None else need)
    arena.reset()
    return REGISTRY[point.collective].variants[point.variant](point, ctx, arena)
