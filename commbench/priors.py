"""Measured between-run spread per backend: what the gate assumes before it has a history.

A run's times drift together (the machine's state over a minute: frequency, other
tenants, cache and scheduler luck), and each row wobbles a little more on its own.
For a collective and variant whose geometric mean is taken over `rows` rows, one run's
log of that mean moves by sqrt(shared**2 + row**2 / rows) between runs; one row's log
median by sqrt(shared**2 + row**2).

Only backends measured here have a prior, per world size measured: the spread differs
a lot between them. gloo: 10 A/A runs at each of two sweeps on this project's shared
2-core CPU machine, while other developers' tests ran beside them (benchmarks/
gate_power.py; README, "Gate power"): 2 ranks with 2 rows per collective and variant
(issue 14's sweep) and configs/ci.toml on 4 ranks. Another world size gets the larger
of each figure measured for the backend, so that nothing measured here cries wolf.
NCCL has none (no GPU here): against one NCCL baseline run the gate says "too little
data" and asks for a history of runs, which it then estimates the spread from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from commbench.stats import Spread


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


MEASURED = {  # backend -> world size -> prior
    "gloo": {
        2: Prior(shared_sd=0.279, row_sd=0.525, runs=10, source="gloo prior (2 ranks)"),
        4: Prior(shared_sd=0.157, row_sd=0.192, runs=10, source="gloo prior (4 ranks)"),
    },
}


def prior_for(backend: str, world_size: int) -> Prior | None:
    """The measured prior for this backend and world size; for a world size not measured,
    the larger of each figure measured for the backend; None for a backend never measured."""
    measured = MEASURED.get(backend)
    if not measured:
        return None
    if world_size in measured:
        return measured[world_size]
    priors = measured.values()
    return Prior(
        shared_sd=max(p.shared_sd for p in priors),
        row_sd=max(p.row_sd for p in priors),
        runs=min(p.runs for p in priors),
        source=f"{backend} prior (largest measured)",
    )
