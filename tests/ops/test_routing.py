"""The MoE routing behind all_to_all: pure functions, no processes."""

from __future__ import annotations

import numpy as np
import pytest

from commbench.routing import check_routing, route


@pytest.mark.parametrize("tokens", [1, 7, 128])
@pytest.mark.parametrize(("tp", "experts", "topk"), [(1, 8, 2), (2, 8, 2), (4, 8, 3), (8, 256, 8)])
@pytest.mark.parametrize("skew", [0.0, 1.2])
def test_split_matrix_is_what_the_tokens_say(
    tokens: int, tp: int, experts: int, topk: int, skew: float
) -> None:
    routing = route(tokens, tp, experts, topk, skew)
    held = [len(part) for part in np.array_split(np.arange(tokens), tp)]  # tensor_split's
    assert np.bincount(routing.owner, minlength=tp).tolist() == held
    reached = routing.sent.sum(axis=1)  # each token goes once to each rank it needs
    assert reached.min() >= 1 and reached.max() <= min(topk, tp)
    for src in range(tp):
        for dst in range(tp):
            ids = routing.token_ids(src, dst)
            assert len(ids) == routing.matrix[src, dst]
            assert (np.diff(ids) > 0).all() and (routing.owner[ids] == src).all()
    assert routing.routed_rows == reached.sum()
    assert routing.capacity == routing.matrix.max()
    assert routing.padded_rows == tp * tp * routing.capacity >= routing.routed_rows
    assert routing.imbalance >= 1.0


def test_experts_are_contiguous_per_rank() -> None:
    """8 experts on 4 ranks: rank r holds experts 2r and 2r+1. On 8 ranks (one expert
    each) `sent` is the tokens' choice itself, so on 4 a token goes to rank r exactly
    when it chose expert 2r or 2r+1 (the choice does not depend on tp)."""
    chosen = route(500, 8, 8, 3, 0.9).sent
    on_four = route(500, 4, 8, 3, 0.9).sent
    assert np.array_equal(on_four, chosen[:, 0::2] | chosen[:, 1::2])
    assert (chosen.sum(axis=1) == 3).all()  # 3 distinct experts per token


def test_expert_choice_follows_the_zipf_law() -> None:
    """With topk 1 the Gumbel-max draw picks expert e with probability rank(e)^-s / H:
    the observed frequencies, sorted, match the law (deterministic seed: not flaky)."""
    skew, experts, tokens = 1.2, 8, 200_000
    routing = route(tokens, experts, experts, 1, skew)  # one expert per rank: sent = choice
    observed = np.sort(routing.sent.mean(axis=0))[::-1]
    law = np.arange(1, experts + 1, dtype=float) ** -skew
    assert np.abs(observed - law / law.sum()).max() < 0.005
    uniform = route(tokens, experts, experts, 1, 0.0).sent.mean(axis=0)
    assert np.abs(uniform - 1 / experts).max() < 0.005


def test_skew_concentrates_load() -> None:
    """Uniform routing of a prefill batch is balanced; skew makes one rank the busiest and
    padding to capacity costlier."""
    uniform = route(16384, 8, 256, 8, 0.0)
    skewed = route(16384, 8, 256, 8, 1.2)
    assert uniform.imbalance < 1.05 < 1.2 < skewed.imbalance
    assert skewed.capacity > uniform.capacity
    assert skewed.padded_rows / skewed.routed_rows > uniform.padded_rows / uniform.routed_rows


@pytest.mark.parametrize("tokens", [8, 128])
@pytest.mark.parametrize("tp", [2, 4])
def test_padding_grows_with_skew(tokens: int, tp: int) -> None:
    """The done-when sweep's shapes: padded bytes never below routed, never shrinking with
    skew, and always a larger multiple of the routed bytes."""
    low, high = route(tokens, tp, 8, 2, 0.0), route(tokens, tp, 8, 2, 1.2)
    assert low.padded_rows >= low.routed_rows and high.padded_rows >= high.routed_rows
    assert high.padded_rows >= low.padded_rows
    assert high.padded_rows / high.routed_rows > low.padded_rows / low.routed_rows


def test_topk_all_experts_reaches_every_rank() -> None:
    routing = route(12, 4, 8, 8, 0.7)
    assert (routing.matrix == 3).all()  # 3 tokens per rank, each to all 4 ranks
    assert routing.capacity == 3 and routing.imbalance == 1.0


def test_routing_is_seeded_and_token_stable() -> None:
    """Every rank derives the same matrix; token t chooses alike at any batch size."""
    a, b = route.__wrapped__(64, 4, 16, 4, 0.8), route.__wrapped__(64, 4, 16, 4, 0.8)
    assert np.array_equal(a.sent, b.sent) and np.array_equal(a.matrix, b.matrix)
    small = route(8, 4, 16, 4, 0.8)
    assert np.array_equal(small.sent, a.sent[:8])


@pytest.mark.parametrize(
    ("experts", "topk", "tp", "problem"),
    [
        (8, 9, 2, "topk: 9 is more than the 8 experts"),
        (6, 2, 4, "experts: 6 is not divisible by tp 4"),
        (8, 2, 4, None),
    ],
)
def test_check_routing(experts: int, topk: int, tp: int, problem: str | None) -> None:
    found = check_routing(experts, topk, tp)
    assert found == problem or (problem and found.startswith(problem))
    if problem:
        with pytest.raises(ValueError, match=problem.split(":")[0]):
            route.__wrapped__(4, tp, experts, topk, 0.0)
