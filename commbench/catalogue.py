"""The catalogue of collectives as a sweep's config and plan know them, without torch:
each collective's variants, the list its rows are as wide as, whether MoE routing sizes
it, and its row size. The ops registry (commbench.ops) binds these variants to buffers
and calls; it reads the rest from here, so a bad name is refused before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from commbench.point import Point
from commbench.routing import route

Width = Literal["hidden", "vocab"]


@dataclass(frozen=True)
class Entry:
    variants: tuple[str, ...]
    width: Width = "hidden"  # the sweep's list its rows are as wide as: hidden, or vocab
    routed: bool = False  # swept over the [moe] routings: experts, topk, skew join its points


ROUTED_FORMS = ("list", "tensor", "padded")

CATALOGUE: dict[str, Entry] = {
    "all_gather": Entry(("list", "tensor")),
    "reduce_scatter": Entry(("list", "tensor")),
    "all_reduce": Entry(("tensor",)),
    "logits_gather": Entry(("list", "tensor"), width="vocab"),  # as wide as the vocabulary
    "all_to_all": Entry(ROUTED_FORMS, routed=True),
    "all_to_all_combine": Entry(ROUTED_FORMS, routed=True),
}


# Every variant any collective has, in catalogue order: what the config accepts.
VARIANTS = tuple(dict.fromkeys(v for entry in CATALOGUE.values() for v in entry.variants))


def row_bytes(point: Point) -> float:
    """A row's size (nccl-tests' conventions). The full [tokens, width] buffer per rank;
    for a routed collective what a rank sends (its whole send buffer, its own chunk
    included), averaged over the group's ranks since they send different amounts."""
    if CATALOGUE[point.collective].routed:
        rows = route(point.tokens, point.tp, point.experts, point.topk, point.skew).routed_rows
        return rows * point.hidden * point.element_size / point.tp
    return point.tokens * point.width * point.element_size
