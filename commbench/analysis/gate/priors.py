"""Measured between-run spread per backend: what the gate assumes before it has a history.

A run's times drift together (the machine's state over a minute: frequency, other
tenants, cache and scheduler luck), each collective/variant drifts a little apart from
the others, and each row wobbles a little more on its own. For a collective and variant
whose geometric mean is taken over `rows` rows, one run's log of that mean moves by
sqrt(shared**2 + row**2 / rows) between runs; one row's log median by
sqrt(shared**2 + row**2); a group's mean less the run's by about
sqrt(group**2 + row**2 (1/rows - 1/all rows)).

The figures are data (priors.toml beside this module), each entry with the backend,
world size and rounds it was measured at, the machine, the date, the sweep, the runs
and the command that fitted it; a user adds their own with `--priors FILE`. Another
world size gets the larger of each figure measured for the backend.

A prior comes from another day, and a user's machine is not the one it was measured on.
So it weighs PRIOR_DF degrees of freedom, however many runs fitted it: as much as a
history of five runs (four), so that such a history speaks as loudly as the prior. A
history whose spread is clearly wider than the prior's
(`weigh`) drops the prior: the machine is not the one it describes. A narrower history
never drops it: a history made back to back understates the drift between days and
nodes, and the prior is what remembers it.
NCCL has none until one is measured: against one NCCL baseline run the gate has no
spread and says `insufficient`; a history of runs gives it one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    RootModel,
    ValidationError,
)

from commbench.analysis.stats import Spread, pool
from commbench.config.settings import read_toml
from commbench.errors import UsageError, describe_invalid
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


PRIORS_FILE = Path(str(resources.files("commbench.analysis.gate") / "priors.toml"))

PriorTable = dict[str, dict[tuple[int, int], Prior]]  # backend -> (world, rounds) -> prior


class Measured(BaseModel):
    """One prior as a priors file holds it: the figures and where they come from."""

    model_config = ConfigDict(extra="forbid")

    world_size: PositiveInt
    rounds: PositiveInt
    shared_sd: PositiveFloat
    row_sd: NonNegativeFloat
    group_sd: NonNegativeFloat
    runs: int = Field(ge=2)
    machine: str  # cores, CPU or GPU, backend, software
    measured: date  # when the runs were made
    sweep: str  # the command each run was
    command: str  # the command that fitted the figures
    note: str = ""

    def prior(self, backend: str, origin: str) -> Prior:
        where = f"{self.world_size} ranks" + (f", {self.rounds} rounds" if self.rounds > 1 else "")
        return Prior(
            self.shared_sd,
            self.row_sd,
            self.group_sd,
            self.runs,
            f"{backend} prior ({where}{origin})",
        )


class BackendPriors(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priors: list[Measured] = []


PriorsFile = RootModel[dict[str, BackendPriors]]


def read_priors(path: Path, origin: str = "") -> PriorTable:
    """A priors file's entries, validated (one line naming the file and the field when
    not); `origin` is added to each prior's source. Two entries for one backend, world
    size and rounds are refused."""
    try:
        data = PriorsFile.model_validate(read_toml(path, "priors"))
    except ValidationError as err:
        raise UsageError(describe_invalid(err, f"priors {path}")) from None
    table: PriorTable = {}
    for backend, entries in data.root.items():
        table[backend] = {}
        for entry in entries.priors:
            key = (entry.world_size, entry.rounds)
            if key in table[backend]:
                raise UsageError(
                    f"priors {path}: {backend}: world_size {key[0]} rounds {key[1]} given twice"
                )
            table[backend][key] = entry.prior(backend, origin)
    return table


@functools.cache
def shipped_priors() -> PriorTable:
    """The priors commbench ships (priors.toml), measured by its developers."""
    return read_priors(PRIORS_FILE)


def load_priors(path: Path | None = None) -> PriorTable:
    """The shipped priors, with a user's file (`--priors FILE`) over them: an entry for a
    backend, world size and rounds the file gives replaces the shipped one."""
    table = {backend: dict(priors) for backend, priors in shipped_priors().items()}
    if path is not None:
        for backend, priors in read_priors(path, f", {path.name}").items():
            table.setdefault(backend, {}).update(priors)
    return table


def prior_for(
    backend: str, world_size: int, rounds: int, table: PriorTable | None = None
) -> Prior | None:
    """The measured prior for a run of this backend, world size and number of rounds.

    Rounds spread a run over more of the machine's drift, so a prior measured with more
    rounds than the run has would be too narrow: among the priors measured with at most
    `rounds` rounds, the one at this world size with the most rounds; for a world size
    not measured so, the larger of each figure among them. None for a backend never
    measured (and when nothing was measured with so few rounds).
    """
    measured = shipped_priors() if table is None else table
    fitting = {
        setting: prior
        for setting, prior in measured.get(backend, {}).items()
        if setting[1] <= rounds
    }
    same_world = [setting for setting in fitting if setting[0] == world_size]
    if same_world:
        return fitting[max(same_world, key=lambda setting: setting[1])]
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


def prior_for_runs(metas: Iterable[RunMeta], table: PriorTable | None = None) -> Prior | None:
    """The prior for judging runs against each other: the first run's backend and world
    size (the identity check holds the others to them) and the fewest rounds any took."""
    metas = list(metas)
    rounds = min(m.rounds for m in metas)
    return prior_for(metas[0].backend, metas[0].world_size, rounds, table)
