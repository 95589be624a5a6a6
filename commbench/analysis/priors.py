"""Measured between-run spread per backend: what the gate assumes before it has a history.

A run's times drift together (the machine's state over a minute: frequency, other
tenants, cache and scheduler luck), and each row wobbles a little more on its own.
For a collective and variant whose geometric mean is taken over `rows` rows, one run's
log of that mean moves by sqrt(shared**2 + row**2 / rows) between runs; one row's log
median by sqrt(shared**2 + row**2).

Only backends measured here have a prior, per world size and number of rounds
measured: the spread differs a lot between them (at 2 gloo ranks, 5 rounds a run spread
a quarter as much as one). gloo: 10 A/A runs of each of three sweeps on this project's
2-core CPU machine, each sweep alone on it (benchmarks/gate_power.py; docs/benchmarks.md,
"Gate power"): a sweep on 2 ranks (2 rows per collective and variant), once with one
round and once with 5, and configs/ci.toml on 4 ranks (5 rounds). Another world size
gets the larger of each figure measured for the backend, so that nothing measured here
cries wolf.
NCCL has none (no GPU here): against one NCCL baseline run the gate says "too little
data" and asks for a history of runs, which it then estimates the spread from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from commbench.analysis.stats import Spread
from commbench.rundir.meta import RunMeta


@dataclass(frozen=True)
class Prior:
    shared_sd: float  # log sd of the drift that every row of a collective/variant shares
    row_sd: float  # log sd of a row's own wobble on top of it
    runs: int  # A/A runs it was measured on: how well it is known
    source: str

    def row(self) -> Spread:
        return Spread(math.hypot(self.shared_sd, self.row_sd), self.runs - 1, self.source)

    def aggregate(self, rows: int) -> Spread:
        sd = math.sqrt(self.shared_sd**2 + self.row_sd**2 / max(rows, 1))
        return Spread(sd, self.runs - 1, self.source)


MEASURED = {  # backend -> (world size, rounds) -> prior
    "gloo": {
        (2, 1): Prior(shared_sd=0.139, row_sd=0.256, runs=10, source="gloo prior (2 ranks)"),
        (2, 5): Prior(
            shared_sd=0.058, row_sd=0.086, runs=10, source="gloo prior (2 ranks, 5 rounds)"
        ),
        (4, 5): Prior(
            shared_sd=0.117, row_sd=0.091, runs=10, source="gloo prior (4 ranks, 5 rounds)"
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
        runs=min(p.runs for p in priors),
        source=f"{backend} prior (largest measured)",
    )


def prior_for_runs(metas: Iterable[RunMeta]) -> Prior | None:
    """The prior for judging runs against each other: the first run's backend and world
    size (the identity check holds the others to them) and the fewest rounds any took."""
    metas = list(metas)
    return prior_for(metas[0].backend, metas[0].world_size, min(m.rounds for m in metas))
