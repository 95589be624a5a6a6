"""Measured between-run spread per backend: what the gate assumes before it has a history.

A run's times drift together (the machine's state over a minute: frequency, other
tenants, cache and scheduler luck), each collective/variant drifts a little apart from
the others, and each row wobbles a little more on its own. For a collective and variant
whose geometric mean is taken over `rows` rows, one run's log of that mean moves by
sqrt(shared**2 + row**2 / rows) between runs; one row's log median by
sqrt(shared**2 + row**2); a group's mean less the run's by about
sqrt(group**2 + row**2 (1/rows - 1/all rows)).

Only backends measured here have a prior, per world size and number of rounds
measured: the spread differs between them (at 2 gloo ranks, 5 rounds halve a row's own
wobble, not the drift its run shares). gloo, on a shared 2-core CPU machine, each sweep
alone on it (benchmarks/gate_power.py, docs/gate.md "Measured power"): configs/ci.toml
on 4 ranks (5 rounds) from 90 runs made over 3.2 hours, judged on 169 runs made after
them; the 2-rank sweep of docs/gate.md (2 rows per collective and variant), once with
one round and once with 5, from 56 runs each made over half an hour. Each was judged
out of sample on later runs. Another world size gets the larger of each figure measured
for the backend.

A prior comes from another day, and a user's machine is not the one it was measured on.
So it weighs PRIOR_DF degrees of freedom, however many runs fitted it: as much as a
history of five runs (four), so that such a history speaks as loudly as the prior. A
history whose spread is clearly wider than the prior's
(`weigh`) drops the prior: the machine is not the one it describes. A narrower history
never drops it: a history made back to back understates the drift between days and
nodes, and the prior is what remembers it.
NCCL has none (no GPU here): against one NCCL baseline run the gate has no spread and
says `insufficient`; a history of runs gives it one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from commbench.analysis.stats import Spread, pool
from commbench.rundir.meta import RunMeta

PRIOR_DF = 4  # a prior from another day or machine weighs as much as a history of five runs
CONTRADICTED = 0.95  # a history wider than the prior beyond this F quantile drops it


@dataclass(frozen=True)
class Prior:
    shared_sd: float  # log sd of the drift that every row of a collective/variant shares
    row_sd: float  # log sd of a row's own wobble on top of it
    group_sd: float  # log sd of a collective/variant's drift apart from its run's mean
    runs: int  # A/A runs it was measured on: how well it is known
    source: str

    def _spread(self, variance: float) -> Spread:
        return Spread(math.sqrt(variance), PRIOR_DF, self.source)

    def row(self) -> Spread:
        """One row's log median: the shared drift and its own wobble."""
        return self._spread(self.shared_sd**2 + self.row_sd**2)

    def aggregate(self, rows: int) -> Spread:
        """The mean log over `rows` rows of one run: the shared drift stays whole."""
        return self._spread(self.shared_sd**2 + self.row_sd**2 / max(rows, 1))

    def group_contrast(self, rows: int, total: int) -> Spread:
        """A group's mean log over its `rows` rows less the mean over all `total` rows of
        the run: the drift every group shares cancels, the group's own does not."""
        return self._spread(self.group_sd**2 + self.row_sd**2 * (1 / rows - 1 / total))

    def row_contrast(self, total: int) -> Spread:
        """A row's log less the mean over all `total` rows of its run."""
        return self._spread(self.group_sd**2 + self.row_sd**2 * (1 - 1 / total))


def weigh(prior: Spread | None, history: Spread | None, measured_df: int) -> Spread | None:
    """The spread to judge with: the prior pooled with the history (`pool`), or the
    history alone when its variance exceeds the prior's beyond the CONTRADICTED quantile
    of F(history df, `measured_df`, the runs the prior was measured on less one): the
    prior describes a quieter machine than this one."""
    from scipy.stats import f

    if prior is not None and history is not None:
        ratio = (history.sd / prior.sd) ** 2
        if ratio > f.ppf(CONTRADICTED, history.df, measured_df):
            return history
    return pool(prior, history)


MEASURED = {  # backend -> (world size, rounds) -> prior
    "gloo": {
        (2, 1): Prior(
            shared_sd=0.190,
            row_sd=0.164,
            group_sd=0.043,
            runs=56,
            source="gloo prior (2 ranks)",
        ),
        (2, 5): Prior(
            shared_sd=0.149,
            row_sd=0.091,
            group_sd=0.023,
            runs=56,
            source="gloo prior (2 ranks, 5 rounds)",
        ),
        (4, 5): Prior(
            shared_sd=0.105,
            row_sd=0.097,
            group_sd=0.022,
            runs=90,
            source="gloo prior (4 ranks, 5 rounds)",
        ),
    },
}


def prior_for(backend: str, world_size: int, rounds: int) -> Prior | None:
    """The measured prior for a run of this backend, world size and number of rounds.

    Rounds spread a run over more of the machine's drift, so a prior measured with more
    rounds than the run has would be too narrow: among the priors measured with at most
    `rounds` rounds, the one at this world size with the most rounds; for a world size
    not measured so, the larger of each figure among them. None for a backend never
    measured (and when nothing was measured with so few rounds).
    """
    fitting = {
        measured: prior
        for measured, prior in MEASURED.get(backend, {}).items()
        if measured[1] <= rounds
    }
    same_world = [measured for measured in fitting if measured[0] == world_size]
    if same_world:
        return fitting[max(same_world, key=lambda measured: measured[1])]
    if not fitting:
        return None
    priors = fitting.values()
    return Prior(
        shared_sd=max(p.shared_sd for p in priors),
        row_sd=max(p.row_sd for p in priors),
        group_sd=max(p.group_sd for p in priors),
        runs=min(p.runs for p in priors),
        source=f"{backend} prior (largest measured)",
    )


def prior_for_runs(metas: Iterable[RunMeta]) -> Prior | None:
    """The prior for judging runs against each other: the first run's backend and world
    size (the identity check holds the others to them) and the fewest rounds any took."""
    metas = list(metas)
    return prior_for(metas[0].backend, metas[0].world_size, min(m.rounds for m in metas))
