"""The statistics of an A/B experiment: interleaved launches, paired, decided by intervals.

The model (docs/ab.md): launch i of arm a measures row r as log t = mu_r + arm_a,r + d_i
+ e_i,r, where d_i is the machine's state during that launch (shared by all its rows)
and e the launch's own noise. A pair is an arm's launch next to a reference launch, so
the pair's log ratio arm/reference holds the arm's effect plus the difference of two
neighbouring launches' states: drift slower than a block cancels, the rest is inside
the pairs' spread. Per row, per collective and overall (each aggregate the geometric
mean over its rows computed within each pair), the mean log ratio over pairs gets a
Student-t interval on n - 1 degrees of freedom.

Repeated looks (docs/ab.md, "Looking again"): the experiment looks at planned pair
counts only: `min_pairs`, doubling from there, and `max_pairs` (3, 6, 10 by default),
and once more where a time budget ends it. Alpha is spent as the pairs come in, alpha *
(pairs / max_pairs) ** SPENDING_POWER by a look at `pairs` (a power-family spending
function, close to O'Brien-Fleming's: little at the early looks, most at the last),
and each look's new share is split evenly (Bonferroni) over the arms and the aggregates
that decide. By the union bound the chance that any interval at any look misses its
true ratio is at most alpha, whatever the stopping rule does with them; fewer looks
than one per pair leave the last look a wider share, the look that decides most.

Pure: numpy and pandas on tables of per-launch times; no launching, no torch. The
command and benchmarks/ab_power.py's replay call the same `look`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from commbench.analysis.stats import t_quantile
from commbench.rundir.reader import measured
from commbench.rundir.schema import KEY_COLUMNS

ALPHA = 0.05
MAX_LOG = 700.0  # exp overflows a float just past 709
SPENDING_POWER = 3  # alpha * (pairs / max_pairs) ** 3 spent by a look at `pairs`
OVERALL = "overall"
# a decided interval: inside the band, or entirely beyond it on one side
EQUIVALENT, SLOWER, FASTER, UNDECIDED = "equivalent", "slower", "faster", "undecided"


@dataclass(frozen=True)
class Pair:
    """An arm's launch and the reference launch of the same block (launch indices)."""

    arm: str
    block: int
    reference: int
    launch: int


@dataclass(frozen=True)
class Design:
    """What decides, fixed before the first launch (and kept by --resume)."""

    arms: list[str]  # the first is the reference
    band: float  # equivalent within [1/(1+band), 1+band]
    min_pairs: int
    max_pairs: int
    alpha: float = ALPHA

    def planned_looks(self) -> list[int]:
        """The pair counts looked at: min_pairs, doubling, and max_pairs."""
        looks, pairs = [], self.min_pairs
        while pairs < self.max_pairs:
            looks.append(pairs)
            pairs *= 2
        return [*looks, self.max_pairs]

    def next_look(self, pairs: int) -> int:
        """The first planned look at `pairs` or after."""
        return next((n for n in self.planned_looks() if n >= pairs), self.max_pairs)

    def spent(self, pairs: int) -> float:
        """The alpha spent by a look at `pairs` pairs (all of it from max_pairs on)."""
        return self.alpha * min(pairs / self.max_pairs, 1.0) ** SPENDING_POWER

    def share(self, pairs: int, previous: int) -> float:
        """A look's new alpha: what is spent by `pairs` less what was by the `previous`
        look (0 before the first)."""
        return self.spent(pairs) - self.spent(previous)

    def interval_alpha(self, share: float, aggregates: int) -> float:
        """Each deciding interval's alpha at a look: its share split over the arms
        compared with the reference and the aggregates that decide."""
        return share / ((len(self.arms) - 1) * max(aggregates, 1))


@dataclass(frozen=True)
class Estimate:
    """One arm's ratio to the reference for one row or aggregate, over its pairs."""

    arm: str
    kind: str  # "row", "collective" or "overall"
    name: str
    ratios: list[float]  # per pair, in launch order
    ratio: float  # exp(mean log ratio)
    low: float  # the interval, NaN below two pairs
    high: float
    decision: str

    def record(self) -> dict[str, Any]:
        """As experiment.json holds it: no interval is null (JSON has no NaN)."""
        said = dict(self.__dict__)
        if math.isnan(self.low):
            said.update(low=None, high=None)
        return said


@dataclass(frozen=True)
class Look:
    """Everything decided after some pairs: each arm's estimates and the verdict."""

    pairs: int  # per arm
    confidence: float  # of each interval
    estimates: list[Estimate] = field(default_factory=list)
    missing_rows: int = 0  # rows some launch lacks (failed or skipped there): left out
    share: float = 0.0  # the alpha this look spends (between looks: the next one would)
    made: bool = False  # a look: its intervals decide; between looks they only show
    next_look: int = 0  # the first planned look after these pairs

    def deciding(self) -> list[Estimate]:
        return [e for e in self.estimates if e.kind != "row"]

    @property
    def decided(self) -> bool:
        return bool(self.deciding()) and all(e.decision != UNDECIDED for e in self.deciding())

    @property
    def regression(self) -> bool:
        return any(e.decision == SLOWER for e in self.deciding())


def launch_times(results: pd.DataFrame) -> pd.Series:
    """A launch's per-row time (the median over samples of the slowest rank: results.csv's
    time_us), measured rows only, indexed by the row's key."""
    rows = measured(results)
    return rows.set_index(KEY_COLUMNS)["time_us"].astype(float)


def row_name(key: tuple) -> str:
    """'all_gather/list tp=2 dp=1 T=8 H=32 bfloat16' (routing and vocab where set)."""
    row = dict(zip(KEY_COLUMNS, key, strict=True))
    text = f"{row['collective']}/{row['variant']} tp={row['tp']} dp={row['dp']}"
    text += f" T={row['tokens']} H={row['hidden']} {row['dtype']}"
    if row["vocab"]:
        text += f" V={row['vocab']}"
    if row["experts"]:
        text += f" E={row['experts']} k={row['topk']} skew={row['skew']}"
    return text


def decide(low: float, high: float, band: float) -> str:
    edge = math.log1p(band)
    if math.isnan(low) or math.isnan(high):
        return UNDECIDED
    low, high = math.log(low), math.log(high)
    if low > edge:
        return SLOWER
    if high < -edge:
        return FASTER
    if -edge <= low and high <= edge:
        return EQUIVALENT
    return UNDECIDED


def t_interval(logs: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """exp of the mean of `logs` and of its Student-t interval (n - 1 df). NaN ends below
    two values or where the pairs agree exactly: no spread can be seen, and an interval
    of zero width would claim a certainty the data cannot give. NaN ends too where the
    interval reaches beyond any ratio a float holds (two pairs at a tiny alpha): it says
    nothing, and is not written as one."""
    mean = float(np.mean(logs))
    sd = float(np.std(logs, ddof=1)) if len(logs) > 1 else 0.0
    if sd == 0:
        return math.exp(mean), math.nan, math.nan
    half = t_quantile(0.5 + confidence / 2, len(logs) - 1) * sd
    half /= math.sqrt(len(logs))
    if abs(mean) + half > MAX_LOG:
        return math.exp(mean), math.nan, math.nan
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def _estimate(
    arm: str, kind: str, name: str, logs: np.ndarray, confidence: float, band: float | None
) -> Estimate:
    ratio, low, high = t_interval(logs, confidence)
    ratios = [float(x) for x in np.exp(logs)]
    decision = UNDECIDED if band is None else decide(low, high, band)
    return Estimate(arm, kind, name, ratios, ratio, low, high, decision)


def look(
    times: dict[int, pd.Series],
    pairs: list[Pair],
    design: Design,
    previous: int = 0,
    final: bool = False,
) -> Look:
    """The estimates after `pairs` (launch index -> its launch_times): per arm, every row
    and aggregate over the rows every launch measured. `previous`: the pairs of the last
    look made (0 before the first). A look is made at a planned pair count, or when the
    budget ends (`final`), from `min_pairs` on; only then do the intervals decide. Between
    looks they are those the next planned look would give, shown for progress."""
    used = sorted({i for p in pairs for i in (p.reference, p.launch)})
    if not used:
        return Look(0, 1 - design.alpha)
    n = min(sum(p.arm == arm for p in pairs) for arm in design.arms[1:])
    made = n >= design.min_pairs and n > previous and (final or n in design.planned_looks())
    share = design.share(n if made else design.next_look(n), previous)
    rows = {i: dict(zip(times[i].index, times[i].to_numpy(), strict=True)) for i in used}
    common = sorted(set.intersection(*(set(r) for r in rows.values())))
    everywhere = set().union(*rows.values())
    values = {i: np.array([rows[i][k] for k in common]) for i in used}
    if not common:
        return Look(0, 1 - design.alpha, [], len(everywhere))
    of = np.array([k[KEY_COLUMNS.index("collective")] for k in common])
    collectives = sorted(set(of))
    confidence = 1 - design.interval_alpha(share, len(collectives) + 1)
    band = design.band if made else None
    estimates = []
    for arm in design.arms[1:]:
        mine = [p for p in pairs if p.arm == arm]
        if not mine:
            continue
        logs = np.log(np.array([values[p.launch] / values[p.reference] for p in mine]))
        groups = [(c, logs[:, of == c]) for c in collectives]
        for name, block in [(OVERALL, logs), *groups]:
            kind = "overall" if name == OVERALL else "collective"
            estimates.append(_estimate(arm, kind, name, block.mean(axis=1), confidence, band))
        for column, key in enumerate(common):
            estimates.append(
                _estimate(arm, "row", row_name(key), logs[:, column], confidence, band)
            )
    missing = len(everywhere) - len(common)
    return Look(n, confidence, estimates, missing, share, made, design.next_look(n + 1))


def verdict(last: Look, design: Design, more: bool) -> str:
    """What the experiment says: 'sampling' (go on: between looks, or not every aggregate
    decided while `more` pairs may come), 'decided', 'regression' (an aggregate slower
    beyond the band, once sampling ends), or 'undecided' (out of budget)."""
    if not last.made:
        return "sampling" if more else "undecided"
    if not last.decided and more:
        return "sampling"
    if last.regression:
        return "regression"
    return "decided" if last.decided else "undecided"


def replay(
    times: dict[int, pd.Series], blocks: list[list[Pair]], design: Design
) -> tuple[Look, str]:
    """The command's procedure over recorded launches, block by block (benchmarks/): the
    look and verdict where it stops."""
    previous = 0
    for count in range(1, len(blocks) + 1):
        pairs = [pair for block in blocks[:count] for pair in block]
        more = count < min(design.max_pairs, len(blocks))
        last = look(times, pairs, design, previous, final=not more)
        said = verdict(last, design, more)
        if said != "sampling":
            return last, said
        previous = last.pairs if last.made else previous
    raise ValueError("replay: no blocks")
