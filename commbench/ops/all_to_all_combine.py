"""all_to_all_combine: the MoE combine, the dispatch's way back.

Each expert rank returns one row per token it received (DeepEP's combine: the token's
rows are summed on its own rank, after the exchange, which is not timed): the dispatch's
exchange over the transposed split matrix, in the same three forms (all_to_all.py).
"""

from __future__ import annotations

from commbench.ops.all_to_all import Exchange, RoutedCollective, routed_variants, routing_of
from commbench.ops.base import GroupContext, gather_factor
from commbench.point import Point


def combine(point: Point, ctx: GroupContext) -> Exchange:
    routing = routing_of(point)
    return Exchange(routing.matrix.T, lambda src, dst: routing.token_ids(dst, src), point, ctx)


COLLECTIVE = RoutedCollective(
    name="all_to_all_combine",
    variants=routed_variants(combine),
    bus_factor=gather_factor,
)
