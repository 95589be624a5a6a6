"""Measured between-run spread per backend: what the gate assumes before it has a history.

A run's times drift together (the machine's state over a minute: frequency, other
tenants, cache and scheduler luck), and each row wobbles a little more on its own.
For a collective and variant whose geometric mean is taken over `rows` rows, one run's
log of that mean moves by sqrt(shared**2 + row**2 / rows) between runs; one row's log
median by sqrt(shared**2 + row**2).

Only backends measured here have a prior. gloo: A/A runs on this project's shared
2-core CPU machine (benchmarks/gate_power.py; README, "Gate power"). NCCL has none (no
GPU here): against one NCCL baseline run the gate says "too little data" and asks for a
history of runs, which it then estimates the spread from.
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


PRIORS = {
    "gloo": Prior(shared_sd=0.10, row_sd=0.15, runs=10, source="gloo prior"),
}
