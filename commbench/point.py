"""The unit of measurement: one collective variant at one shape on one dp x tp split."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

# The dtypes a sweep can measure, with their element sizes: the one table (the config's
# `Dtype`, the catalogue's torch dtypes and the GPU checks derive from it).
ELEMENT_SIZE = {"bfloat16": 2, "float16": 2, "float32": 4}
Dtype = Literal[tuple(ELEMENT_SIZE)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class Point:
    """One measured row: a collective variant at one shape on one dp x tp split."""

    collective: str
    variant: str
    dtype: str
    tokens: int
    hidden: int  # 0 for logits_gather, whose width is the vocabulary
    world_size: int
    tp: int
    vocab: int = 0  # only logits_gather moves [tokens, vocab / tp] slices
    experts: int = 0  # the routed collectives (all_to_all): their MoE routing, else 0
    topk: int = 0
    skew: float = 0.0

    @property
    def dp(self) -> int:
        return self.world_size // self.tp

    @property
    def element_size(self) -> int:
        return ELEMENT_SIZE[self.dtype]

    def key(self) -> dict[str, object]:
        return {**asdict(self), "dp": self.dp}

    @property
    def width(self) -> int:
        """The row width of the moved [tokens, width] buffer: hidden, or vocab for logits."""
        return self.vocab or self.hidden

    def describe(self) -> str:
        return row_label(self.key())


def row_label(row: Mapping[str, object]) -> str:
    """A point's or a row's key in the words an engineer would use."""
    return (
        f"{row['collective']}/{row['variant']} {row['dtype']} T={row['tokens']} "
        f"{width_label(row)} tp={row['tp']} dp={row['dp']}"
    )


def width_label(row: Mapping[str, object]) -> str:
    """`H=7168`, or `V=129280` for a logits row, and `H=7168 E=256 k=8 s=1.2` for a routed
    one: how a person names a row's width (and its routing, where it has one)."""
    width = f"V={row['vocab']}" if row.get("vocab") else f"H={row['hidden']}"
    if row.get("experts"):
        width += f" E={row['experts']} k={row['topk']} s={row['skew']:g}"
    return width
