"""The torch-free catalogue and the ops registry describe the same collectives."""

from __future__ import annotations

import pytest

from commbench.catalogue import CATALOGUE, row_bytes
from commbench.ops import REGISTRY
from commbench.point import Point


def test_the_registry_binds_exactly_the_catalogues_variants() -> None:
    assert list(REGISTRY) == list(CATALOGUE)
    for name, collective in REGISTRY.items():
        assert tuple(collective.variants) == CATALOGUE[name].variants, name


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        (Point("all_gather", "list", "bfloat16", 128, 4096, 8, 4), 128 * 4096 * 2),
        (Point("logits_gather", "tensor", "float32", 8, 0, 8, 4, vocab=1000), 8 * 1000 * 4),
    ],
)
def test_row_bytes_is_the_full_buffer_per_rank(point: Point, expected: int) -> None:
    assert row_bytes(point) == expected == REGISTRY[point.collective].bytes(point)


def test_routed_row_bytes_is_what_a_rank_sends_on_average() -> None:
    """Every token goes to at least its own rank: with one expert per rank and top-1, a
    token goes to exactly one rank, so the group sends T rows, T / tp a rank."""
    point = Point("all_to_all", "tensor", "bfloat16", 64, 256, 4, 4, experts=4, topk=1)
    assert row_bytes(point) == 64 * 256 * 2 / 4
