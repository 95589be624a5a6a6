"""What an A/B experiment's pairs say: per row and per aggregate, each arm's ratio to the
reference, an interval, and a decision that sticks once made.

The model (docs/ab.md, "How it decides"): launch i of arm a measures row r as log t =
mu_r + arm_a,r + d_i + e_i,r, where d_i is the machine's state during that launch (shared
by all its rows) and e the launch's own noise. A pair is an arm's launch next to a
reference launch, so its log ratio holds the arm's effect and the difference of two
neighbouring launches' states. Every aggregate is computed within each pair: the
absolute ones (overall, each collective) carry what the pair's two launches drifted
apart by; the contrasts (a collective against the rest of the pair's rows, the
prefill-sized rows against the decode-sized ones, a collective's sizes) cancel it. Over
the pairs, each aggregate's mean gets one-sided Student-t bounds at its look's share
(plan.py) and, at every look, its confidence sequence's (sequence.py): slower where the
lower bound is beyond the band, faster where the upper one is below it, equivalent where
both are inside it (two one-sided tests); a decision made is kept.
Rows do not decide: each is shown with its confidence sequence adjusted for every row
and arm (which also covers picking the rows that differ most), and a row's decision is
that sequence's.

Pure: numpy and pandas on tables of per-launch times; no launching, no torch. The
command and benchmarks/ab_power.py's replay call the same `look`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from commbench.analysis.ab.plan import Design, Pair
from commbench.analysis.ab.sequence import half_width
from commbench.analysis.scenarios import DECODE_MAX_TOKENS
from commbench.analysis.stats import t_quantile
from commbench.rundir.reader import measured
from commbench.rundir.schema import KEY_COLUMNS

MAX_LOG = 700.0  # exp overflows a float just past 709
OVERALL = "overall"
# a decided interval: inside the band, or entirely beyond it on one side
EQUIVALENT, SLOWER, FASTER, UNDECIDED = "equivalent", "slower", "faster", "undecided"
# kind -> family: the absolute ratios and the contrasts decide, each with its own alpha
FAMILY = {"overall": "absolute", "collective": "absolute", "contrast": "contrast",
          "size": "contrast", "collective size": "contrast", "row": "rows"}  # fmt: skip
ROWS_ALPHA = 0.05  # the rows' confidence sequences, over every row and arm
DECODE = f"decode-sized (T<={DECODE_MAX_TOKENS})"
PREFILL = f"prefill-sized (T>{DECODE_MAX_TOKENS})"


@dataclass(frozen=True)
class Estimate:
    """One arm's ratio to the reference for one row or aggregate, over its pairs."""

    arm: str
    # "overall", "collective" (absolute); "contrast" (a collective against the rest of
    # the launch), "size" (the prefill-sized rows against the decode-sized ones),
    # "collective size" (a collective's prefill-sized rows against its decode-sized ones);
    # "row"
    kind: str
    name: str
    ratios: list[float]  # per pair, in launch order
    ratio: float  # exp(mean log ratio)
    low: float  # the interval it is judged on (NaN where none can be drawn yet)
    high: float
    decision: str
    by: str = ""  # what decided it: "plan" (a look's one-sided tests) or "sequence"
    pairs: int = 0  # the pairs it was decided at

    @property
    def family(self) -> str:
        return FAMILY[self.kind]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.arm, self.kind, self.name)

    def record(self) -> dict[str, Any]:
        """As experiment.json holds it: no interval is null (JSON has no NaN)."""
        said = dict(self.__dict__)
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            said.update(low=None, high=None)
        return said

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Estimate:
        low, high = record["low"], record["high"]
        nan = math.nan
        return cls(**{**record, "low": nan if low is None else low,
                      "high": nan if high is None else high})  # fmt: skip


Decided = dict[tuple[str, str, str], Estimate]  # the decisions made at earlier looks


@dataclass(frozen=True)
class Look:
    """Everything after some pairs: each arm's estimates and the verdict."""

    pairs: int  # per arm
    estimates: list[Estimate] = field(default_factory=list)
    missing_rows: int = 0  # rows some launch lacks (failed or skipped there): left out
    made: bool = False  # a look: its tests decide; between looks the intervals only show
    next_look: int = 0  # the first planned look after these pairs
    alphas: dict[str, float] = field(default_factory=dict)  # family -> each test's alpha

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
    """Slower, faster or equivalent where the interval says so beyond or within the band."""
    edge = math.log1p(band)
    if not (math.isfinite(low) and math.isfinite(high)):
        return UNDECIDED
    low, high = math.log(low), math.log(high)
    if low > edge:
        return SLOWER
    if high < -edge:
        return FASTER
    if -edge <= low and high <= edge:
        return EQUIVALENT
    return UNDECIDED


def one_sided_bounds(logs: np.ndarray, alpha: float) -> tuple[float, float]:
    """The mean's lower and upper one-sided Student-t bounds at `alpha` each (n - 1 df), as
    ratios. NaN below two values, where the values agree exactly (no spread: never an
    interval of zero width), or where the bound is beyond any ratio a float holds."""
    if len(logs) < 2 or alpha <= 0:
        return math.nan, math.nan
    sd = float(np.std(logs, ddof=1))
    half = t_quantile(1 - alpha, len(logs) - 1) * sd / math.sqrt(len(logs)) if sd else math.inf
    return _bounds(float(np.mean(logs)), half)


def sequence_bounds(logs: np.ndarray, alpha: float) -> tuple[float, float]:
    """The confidence sequence's bounds at `alpha` (two-sided), as ratios."""
    return _bounds(float(np.mean(logs)), half_width(logs, alpha))


def _bounds(mean: float, half: float) -> tuple[float, float]:
    if not math.isfinite(half) or abs(mean) + half > MAX_LOG:
        return math.nan, math.nan
    return math.exp(mean - half), math.exp(mean + half)


def size_class(tokens: int) -> str:
    return DECODE if tokens <= DECODE_MAX_TOKENS else PREFILL


def aggregates(logs: np.ndarray, keys: list[tuple]) -> list[tuple[str, str, np.ndarray]]:
    """(kind, name, per-pair values) of every aggregate, each computed within each pair:
    overall and each collective (absolute); then each collective against the rest of the
    pair's rows, and the prefill-sized rows against the decode-sized ones (contrasts,
    where there is a rest: the drift the whole launch shares cancels, and a change of the
    group alone shows whole, not diluted by the group's own share of a mean over every
    row; of two size classes one contrast says it all, the other is its mirror); then
    each collective's prefill-sized rows against its decode-sized ones (a change at one
    size range of one collective, which the size classes would dilute over every
    collective; the collective's own drift cancels too)."""
    found = [("overall", OVERALL, logs.mean(axis=1))]
    collective = np.array([k[KEY_COLUMNS.index("collective")] for k in keys])
    names = sorted(set(collective))
    found += [("collective", c, logs[:, collective == c].mean(axis=1)) for c in names]
    if len(names) > 1:
        found += [("contrast", c, _against_the_rest(logs, collective == c)) for c in names]
    sizes = np.array([size_class(int(k[KEY_COLUMNS.index("tokens")])) for k in keys])
    if len(set(sizes)) > 1:
        found.append(("size", PREFILL, _against_the_rest(logs, sizes == PREFILL)))
    for name in names:
        prefill = logs[:, (collective == name) & (sizes == PREFILL)]
        decode = logs[:, (collective == name) & (sizes == DECODE)]
        if prefill.size and decode.size:
            found.append(("collective size", name, prefill.mean(axis=1) - decode.mean(axis=1)))
    return found


def _against_the_rest(logs: np.ndarray, mine: np.ndarray) -> np.ndarray:
    return logs[:, mine].mean(axis=1) - logs[:, ~mine].mean(axis=1)


def _judged(
    arm: str, kind: str, name: str, logs: np.ndarray, design: Design, alphas: dict, made: bool
) -> Estimate:
    """One aggregate at a look: the plan's bounds where this look has a share of its
    family's alpha, else its confidence sequence's; decided by either at a look."""
    ratios = [float(x) for x in np.exp(logs)]
    ratio = math.exp(float(np.mean(logs)))
    plan = one_sided_bounds(logs, alphas[FAMILY[kind]])
    sequence = sequence_bounds(logs, alphas[f"{FAMILY[kind]} sequence"])
    low, high = plan if math.isfinite(plan[0]) else sequence
    if made:
        for by, (lo, hi) in (("plan", plan), ("sequence", sequence)):
            decision = decide(lo, hi, design.band)
            if decision != UNDECIDED:
                return Estimate(arm, kind, name, ratios, ratio, lo, hi, decision, by, len(logs))
    return Estimate(arm, kind, name, ratios, ratio, low, high, UNDECIDED)


def look(
    times: dict[int, pd.Series],
    pairs: list[Pair],
    design: Design,
    previous: int = 0,
    final: bool = False,
    decided: Decided | None = None,
) -> Look:
    """The estimates after `pairs` (launch index -> its launch_times): per arm, every row
    and aggregate over the rows every launch measured. `previous`: the pairs of the last
    look made (0 before the first); `decided`: the decisions of the looks before, which
    stand. A look is made at a planned pair count, or when the budget ends (`final`), from
    `min_pairs` on; only then do the tests decide. Between looks the intervals are those
    the next planned look would give, shown for progress."""
    decided = decided or {}
    used = sorted({i for p in pairs for i in (p.reference, p.launch)})
    if not used:
        return Look(0)
    n = min(sum(p.arm == arm for p in pairs) for arm in design.arms[1:])
    made = n >= design.min_pairs and n > previous and (final or n in design.planned_looks())
    rows = {i: dict(zip(times[i].index, times[i].to_numpy(), strict=True)) for i in used}
    common = sorted(set.intersection(*(set(r) for r in rows.values())))
    everywhere = set().union(*rows.values())
    if not common:
        return Look(0, [], len(everywhere))
    values = {i: np.array([rows[i][k] for k in common]) for i in used}
    share = design.share(n if made else design.next_look(n), previous)
    kinds = [kind for kind, _, _ in aggregates(np.zeros((1, len(common))), common)]
    alphas = {}
    for family in ("absolute", "contrast"):
        count = sum(FAMILY[kind] == family for kind in kinds)
        alphas[family] = design.test_alpha(share, count)
        alphas[f"{family} sequence"] = design.sequence_alpha(count)
    rows_alpha = ROWS_ALPHA / ((len(design.arms) - 1) * len(common))
    estimates = []
    for arm in design.arms[1:]:
        mine = [p for p in pairs if p.arm == arm]
        if not mine:
            continue
        logs = np.log(np.array([values[p.launch] / values[p.reference] for p in mine]))
        for kind, name, per_pair in aggregates(logs, common):
            earlier = decided.get((arm, kind, name))
            if earlier is not None:
                estimates.append(earlier)
            else:
                estimates.append(_judged(arm, kind, name, per_pair, design, alphas, made))
        for column, key in enumerate(common):
            per_pair = logs[:, column]
            low, high = sequence_bounds(per_pair, rows_alpha)
            ratios = [float(x) for x in np.exp(per_pair)]
            decision = decide(low, high, design.band)
            by = "sequence" if decision != UNDECIDED else ""
            ratio = math.exp(float(per_pair.mean()))
            row = Estimate(arm, "row", row_name(key), ratios, ratio, low, high, decision, by, n)
            estimates.append(row)
    alphas["rows sequence"] = rows_alpha
    missing = len(everywhere) - len(common)
    return Look(n, estimates, missing, made, design.next_look(n + 1), alphas)


def newly_decided(last: Look, decided: Decided) -> Decided:
    """The decisions standing after `last`: those before it and those it made."""
    found = dict(decided)
    for estimate in last.deciding():
        if estimate.decision != UNDECIDED:
            found.setdefault(estimate.key, estimate)
    return found


def verdict(last: Look, design: Design, more: bool) -> str:
    """What the experiment says: 'sampling' (go on: between looks, or not every aggregate
    decided while `more` pairs may come), 'decided', 'regression' (an aggregate decided
    slower, once sampling ends), or 'undecided' (out of budget)."""
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
    previous, decided = 0, {}
    for count in range(1, len(blocks) + 1):
        pairs = [pair for block in blocks[:count] for pair in block]
        more = count < min(design.max_pairs, len(blocks))
        last = look(times, pairs, design, previous, final=not more, decided=decided)
        said = verdict(last, design, more)
        if said != "sampling":
            return last, said
        if last.made:
            previous, decided = last.pairs, newly_decided(last, decided)
    raise ValueError("replay: no blocks")
