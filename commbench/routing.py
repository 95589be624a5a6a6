"""MoE expert-parallel routing: which token goes to which rank, and how much each rank sends.

Pure (numpy, no torch): every rank derives the same split matrix from the point alone, so
no exchange of sizes is timed, and equal row keys mean equal routing in every run.

The model, as DeepEP's dispatch does it: the `tokens` of an attention group are split over
its `tp` ranks as `tensor_split` splits them (the first `tokens % tp` ranks hold one more);
`experts` are placed contiguously, `experts / tp` per rank; each token picks `topk` distinct
experts and goes once to every rank that holds at least one of them (its own rank
included: that chunk is part of the all_to_all too).

Expert choice: expert popularity follows a Zipf law of exponent `skew` over a seeded
random order of the experts (0 is uniform; hot experts land on arbitrary ranks, as a
trained router's do). Each token draws its `topk` experts without replacement with those
weights, by the Gumbel-top-k trick (Kool et al., ICML 2019: the `k` largest of
`log weight + Gumbel noise` are a weighted sample without replacement). The noise is
drawn from ROUTING_SEED row by row, so token `t` chooses the same way whatever `tokens`,
`tp` or `skew` (only the weights change): the rows of one sweep differ only where their
keys do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

ROUTING_SEED = 17


@dataclass(frozen=True, eq=False)
class Routing:
    """One routing: `sent[t, d]` says token `t` goes to rank `d`; `owner[t]` holds it."""

    sent: np.ndarray  # [tokens, tp] bool
    owner: np.ndarray  # [tokens] int: the rank that holds each token

    @property
    def tp(self) -> int:
        return self.sent.shape[1]

    @cached_property
    def matrix(self) -> np.ndarray:
        """[tp, tp] rows each rank sends to each rank in the dispatch (the split matrix);
        the combine sends its transpose."""
        matrix = np.zeros((self.tp, self.tp), dtype=np.int64)
        np.add.at(matrix, self.owner, self.sent.astype(np.int64))
        return matrix

    def token_ids(self, src: int, dst: int) -> np.ndarray:
        """The tokens (indices into the group's batch, ascending) that `src` dispatches to `dst`."""
        return np.flatnonzero((self.owner == src) & self.sent[:, dst])

    @property
    def routed_rows(self) -> int:
        """Rows the dispatch moves in the whole group (each token once per target rank)."""
        return int(self.matrix.sum())

    @property
    def capacity(self) -> int:
        """The largest chunk any rank sends any rank: what the padded form pads every chunk to."""
        return int(self.matrix.max())

    @property
    def padded_rows(self) -> int:
        """Rows the padded form moves in the whole group: tp x tp chunks of `capacity`."""
        return self.tp * self.tp * self.capacity

    @property
    def imbalance(self) -> float:
        """The busiest rank's rows (sent or received, whichever is more) over the mean rank's.

        The same for dispatch and combine (one is the other transposed); 1.0 is balanced.
        """
        busiest = max(self.matrix.sum(axis=0).max(), self.matrix.sum(axis=1).max())
        return float(busiest * self.tp / self.routed_rows)


def check_routing(experts: int, topk: int, tp: int) -> str | None:
    """`field: why` if this routing cannot be placed on `tp` ranks, else None."""
    if topk > experts:
        return f"topk: {topk} is more than the {experts} experts"
    if experts % tp:
        return (
            f"experts: {experts} is not divisible by tp {tp}"
            " (experts are placed contiguously, experts / tp per rank)"
        )
    return None


@lru_cache(maxsize=64)
def route(tokens: int, tp: int, experts: int, topk: int, skew: float) -> Routing:
    """The routing of `tokens` over `tp` ranks (see the module doc); cached, since binding a
    point and sizing it both ask, on every rank."""
    if problem := check_routing(experts, topk, tp):
        raise ValueError(problem)
    rng = np.random.default_rng(ROUTING_SEED)
    popularity = rng.permutation(experts)  # popularity[i]: the (i+1)-th most chosen expert
    log_weight = np.empty(experts)
    log_weight[popularity] = -skew * np.log(np.arange(1, experts + 1))  # Zipf: rank^-skew
    keys = rng.gumbel(size=(tokens, experts)) + log_weight
    chosen = np.argpartition(-keys, topk - 1, axis=1)[:, :topk]
    sent = np.zeros((tokens, tp), dtype=bool)
    sent[np.arange(tokens)[:, None], chosen // (experts // tp)] = True
    held = [len(part) for part in np.array_split(np.arange(tokens), tp)]  # as tensor_split
    owner = np.repeat(np.arange(tp), held)
    return Routing(sent, owner)
