"""The catalogue of collectives: one module per family, one registry line each."""

from dataclasses import dataclass, replace

from commbench.ops import (
    all_gather,
    all_reduce,
    all_to_all,
    all_to_all_combine,
    logits_gather,
    reduce_scatter,
)
from commbench.ops.arena import META, Arena
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


@dataclass(frozen=True)
class Footprint:
    """What a point needs on this rank, in bytes."""

    buffers: int  # its own buffers: views of the arena
    hidden: int  # what the backend allocates at every call: a list form's flat buffer
    output: int = 0  # its output, as the check's expected values need it again

    @property
    def total(self) -> int:
        return self.buffers + self.hidden


def footprint(point: Point, ctx: GroupContext) -> Footprint:
    """The point's footprint on this rank, found by binding it to nothing."""
    arena = Arena(META)
    variant = REGISTRY[point.collective].variants[point.variant]
    bound = variant(point, replace(ctx, device=META), arena)
    output = bound.output.numel() * bound.output.element_size()
    return Footprint(arena.used, bound.hidden_bytes, output)


def bind(point: Point, ctx: GroupContext, arena: Arena, need: int | None = None) -> Bound:
    """The point's variant on this rank, its buffers views of `arena` (grown if needed);
    `need` is its buffers' bytes when the caller has them already."""
    arena.reserve(footprint(point, ctx).buffers if need is None else need)
    arena.reset()
    return REGISTRY[point.collective].variants[point.variant](point, ctx, arena)
