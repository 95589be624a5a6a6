"""Plan expansion, and the byte and bandwidth conventions of docs/method.md."""

from __future__ import annotations

import pytest
import torch

from commbench.config.settings import load_config
from commbench.errors import UsageError
from commbench.ops import REGISTRY
from commbench.ops.base import padded, split_sizes
from commbench.sweep.plan import build_plan, round_order


def test_plan_is_the_cross_product_grouped_by_split() -> None:
    config = load_config(None, {"tokens": ["1", "8"], "hidden": ["64"], "dtypes": ["float32"]})
    plan = build_plan(config, 4)
    # tp 2 and 4; per split: ag 2 variants + rs 2 + ar 1, times 2 token counts
    assert len(plan) == 2 * 5 * 2
    assert [p.tp for p in plan] == sorted(p.tp for p in plan)
    assert {(p.tp, p.dp) for p in plan} == {(2, 2), (4, 1)}
    first = plan[:2]
    assert [(p.collective, p.variant, p.tokens) for p in first] == [
        ("all_gather", "list", 1),
        ("all_gather", "tensor", 1),
    ]
    assert build_plan(config, 4) == plan  # deterministic


def test_variant_filter_and_empty_plan() -> None:
    config = load_config(None, {"variants": ["list"]})
    assert {p.variant for p in build_plan(config, 2)} == {"list"}
    assert "all_reduce" not in {p.collective for p in build_plan(config, 2)}
    nothing = load_config(None, {"variants": ["list"], "collectives": ["all_reduce"]})
    with pytest.raises(UsageError, match="nothing to measure"):
        build_plan(nothing, 2)


@pytest.mark.parametrize("total", [0, 1, 5, 7, 8, 13, 2048])
@pytest.mark.parametrize("parts", [1, 2, 3, 4, 8])
def test_split_sizes_match_tensor_split(total: int, parts: int) -> None:
    torch_sizes = [len(c) for c in torch.empty(total).tensor_split(parts)]
    assert split_sizes(total, parts) == torch_sizes
    assert padded(total, parts) % parts == 0
    assert 0 <= padded(total, parts) - total < parts


def test_bytes_and_bus_factors_follow_nccl_tests() -> None:
    config = load_config(None, {"tokens": ["7"], "hidden": ["4096"], "dtypes": ["bfloat16"]})
    for point in build_plan(config, 4):
        collective = REGISTRY[point.collective]
        assert collective.bytes(point) == 7 * 4096 * 2
    n = 4
    assert REGISTRY["all_gather"].bus_factor(n) == pytest.approx(3 / 4)
    assert REGISTRY["reduce_scatter"].bus_factor(n) == pytest.approx(3 / 4)
    assert REGISTRY["all_reduce"].bus_factor(n) == pytest.approx(2 * 3 / 4)


def test_rounds_are_seeded_shuffles_of_the_plan() -> None:
    plan = build_plan(load_config(None, {"tokens": ["1", "8", "64"]}), 4)
    assert round_order(plan, 1, 0) == [(0, p) for p in plan]
    order = round_order(plan, 3, seed=7)
    assert order == round_order(plan, 3, seed=7)  # every rank computes the same order
    assert order != round_order(plan, 3, seed=8)
    rounds = [[p for r, p in order if r == i] for i in range(3)]
    assert all(sorted(r, key=plan.index) == plan for r in rounds)
    assert rounds[0] != rounds[1]
