"""What an A/B experiment decides by, fixed before its first launch: the arms, the band, the
looks and how alpha is shared among them (docs/ab.md, "How it decides").

Alpha (5% for the experiment) is shared by two families that decide, each with its half:

- absolute: each arm's ratio to the reference overall and per collective (what a job
  feels);
- contrasts: each collective against the rest of its launch, the prefill-sized rows
  against the decode-sized ones, and each collective's prefill-sized rows against its
  decode-sized ones: the drift every row of a launch shares cancels, so a change of one
  collective or one size range shows where the absolute ratios drown it.

Within a family, four fifths go to the planned looks, spent as the pairs come in,
alpha * (pairs / horizon) ** SPENDING_POWER by a look at `pairs`, each look's new share
split evenly (Bonferroni) over the arms compared and the family's aggregates; the
horizon is the planned pairs (PLANNED_PAIRS, or a smaller budget), so a larger
`--max-pairs` does not thin the early looks. The last fifth goes to a confidence
sequence (sequence.py), valid at every pair count: the looks past the horizon, an
extended budget, use it alone. Looks come at even pair counts (ABBA blocks cancel a
linear drift over each two), at the first, two pairs later and at the horizon, then at
every even count past it. By the union bound, the chance that any decision of any look
is wrong is at most alpha, whatever the stopping rule does with them.
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHA = 0.05
FAMILIES = ("absolute", "contrast")  # each decides with its half of alpha
SEQUENCE_SHARE = 0.2  # of each family's alpha: the confidence sequence's
SPENDING_POWER = 3  # alpha * (pairs / horizon) ** 3 spent by a look at `pairs`
PLANNED_PAIRS = 10  # the spending's horizon, whatever the budget


@dataclass(frozen=True)
class Pair:
    """An arm's launch and the reference launch of the same block (launch indices)."""

    arm: str
    block: int
    reference: int
    launch: int


@dataclass(frozen=True)
class Design:
    """The arms (the first is the reference), the band, the looks and alpha."""

    arms: list[str]
    band: float  # equivalent within [1/(1+band), 1+band]
    min_pairs: int  # the first look
    max_pairs: int  # the budget (an extension raises it)
    alpha: float = ALPHA
    planned_pairs: int = PLANNED_PAIRS  # the spending's horizon, fixed at the start

    @property
    def horizon(self) -> int:
        return min(self.planned_pairs, self.max_pairs)

    def planned_looks(self) -> list[int]:
        """The pair counts looked at: the first, two pairs later, the horizon, then every
        even count up to the budget."""
        planned = {self.min_pairs, self.min_pairs + 2, self.horizon}
        planned |= set(range(self.horizon + 2, self.max_pairs + 1, 2))
        return sorted(n for n in planned if n <= self.max_pairs)

    def next_look(self, pairs: int) -> int:
        """The first planned look at `pairs` or after."""
        return next((n for n in self.planned_looks() if n >= pairs), self.max_pairs)

    def family_alpha(self) -> float:
        return self.alpha / len(FAMILIES)

    def spent(self, pairs: int) -> float:
        """A family's planned alpha spent by a look at `pairs` pairs (all from the horizon)."""
        planned = (1 - SEQUENCE_SHARE) * self.family_alpha()
        return planned * min(pairs / self.horizon, 1.0) ** SPENDING_POWER

    def share(self, pairs: int, previous: int) -> float:
        """A look's new share of a family's planned alpha: spent by `pairs` less by the
        `previous` look (0 before the first); nothing past the horizon."""
        return self.spent(pairs) - self.spent(previous)

    def test_alpha(self, share: float, aggregates: int) -> float:
        """Each one-sided test's alpha at a look: the share over the arms compared with
        the reference and the family's aggregates."""
        return share / ((len(self.arms) - 1) * max(aggregates, 1))

    def sequence_alpha(self, aggregates: int) -> float:
        """Each aggregate's confidence sequence's alpha (two-sided, valid at every look)."""
        family = SEQUENCE_SHARE * self.family_alpha()
        return family / ((len(self.arms) - 1) * max(aggregates, 1))
