"""The A/B experiment's statistics on tables of per-launch times: pairing, intervals
against scipy, decisions, the planned looks and their shares of alpha, and the
sequential procedure's false alarms under repeated looks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from commbench.analysis.ab import (
    Design,
    Look,
    Pair,
    decide,
    launch_times,
    look,
    replay,
    t_interval,
    verdict,
)
from commbench.rundir.schema import KEY_COLUMNS

pytestmark = pytest.mark.floor

ROWS = [("all_gather", "list"), ("all_gather", "tensor"), ("all_reduce", "tensor")]


def key(collective: str, variant: str) -> tuple:
    return (collective, variant, "gloo", 2, 1, 2, "float32", 8, 32, 0, 0, 0, 0.0)


INDEX = pd.MultiIndex.from_tuples([key(*r) for r in ROWS], names=KEY_COLUMNS)


def launch(times: list[float], rows: list[tuple[str, str]] = ROWS) -> pd.Series:
    index = INDEX if rows == ROWS else INDEX[: len(rows)]
    return pd.Series(times, index=index, dtype=float)


def test_launch_times_keep_measured_rows_by_key() -> None:
    frame = pd.DataFrame([dict(zip(KEY_COLUMNS, key(*r), strict=True)) for r in ROWS])
    frame["time_us"] = [10.0, 20.0, 30.0]
    frame["check"] = ["pass", "skip", "pass"]
    got = launch_times(frame)
    assert got.to_dict() == {key(*ROWS[0]): 10.0, key(*ROWS[2]): 30.0}


def test_t_interval_is_scipys_on_the_log_ratios() -> None:
    logs = np.log([1.10, 1.31, 0.97, 1.22])
    ratio, low, high = t_interval(logs, 0.99)
    expected = stats.t.interval(0.99, 3, loc=logs.mean(), scale=stats.sem(logs))
    assert ratio == pytest.approx(math.exp(logs.mean()))
    assert (low, high) == pytest.approx(tuple(np.exp(expected)))
    assert math.isnan(t_interval(logs[:1], 0.99)[1])  # one pair shows no spread


def test_a_look_pairs_rows_and_aggregates_within_each_pair() -> None:
    ref = [[100.0, 200.0, 50.0], [110.0, 190.0, 55.0], [95.0, 210.0, 52.0]]
    arm = [[111.0, 236.0, 101.0], [118.0, 230.0, 104.0], [107.0, 247.0, 109.0]]
    times = {}
    for block in range(3):
        times[2 * block], times[2 * block + 1] = launch(ref[block]), launch(arm[block])
    pairs = [Pair("b", block, 2 * block, 2 * block + 1) for block in range(3)]
    design = Design(["a", "b"], band=0.05, min_pairs=3, max_pairs=3)
    got = look(times, pairs, design)
    assert got.pairs == 3 and got.confidence == pytest.approx(1 - 0.05 / 3)
    logs = np.log(np.array(arm) / np.array(ref))
    expected = {"overall": logs.mean(axis=1), "all_gather": logs[:, :2].mean(axis=1)}
    expected["all_reduce"] = logs[:, 2]
    for name, per_pair in expected.items():
        (e,) = [e for e in got.estimates if e.name == name and e.kind != "row"]
        low, high = stats.t.interval(
            got.confidence, 2, loc=per_pair.mean(), scale=stats.sem(per_pair)
        )
        assert e.ratios == pytest.approx(np.exp(per_pair).tolist())
        assert (e.ratio, e.low, e.high) == pytest.approx(
            (math.exp(per_pair.mean()), math.exp(low), math.exp(high))
        )
    rows = [e for e in got.estimates if e.kind == "row"]
    assert rows[0].name == "all_gather/list tp=2 dp=1 T=8 H=32 float32"
    assert [e.ratio for e in rows] == pytest.approx(np.exp(logs.mean(axis=0)).tolist())


def test_rows_a_launch_lacks_are_left_out_and_counted() -> None:
    times = {0: launch([1.0, 2.0, 3.0]), 1: launch([1.1, 2.2], ROWS[:2])}
    times |= {2: launch([1.0, 2.0, 3.0]), 3: launch([1.2, 2.1, 3.3])}
    pairs = [Pair("b", 0, 0, 1), Pair("b", 1, 2, 3)]
    got = look(times, pairs, Design(["a", "b"], 0.05, 2, 2))
    assert got.missing_rows == 1
    assert {e.name for e in got.estimates if e.kind != "row"} == {"overall", "all_gather"}


@pytest.mark.parametrize(
    ("low", "high", "decision"),
    [
        (0.97, 1.04, "equivalent"),
        (1.06, 1.40, "slower"),
        (0.50, 0.94, "faster"),
        (0.97, 1.08, "undecided"),
        (1.04, 1.30, "undecided"),
        (math.nan, math.nan, "undecided"),
    ],
)
def test_an_interval_decides_inside_or_beyond_the_band(low, high, decision) -> None:
    assert decide(low, high, band=0.05) == decision


def test_looks_are_planned_at_min_pairs_doubling_and_max_pairs() -> None:
    assert Design(["a", "b"], 0.05, 3, 10).planned_looks() == [3, 6, 10]
    assert Design(["a", "b"], 0.05, 5, 40).planned_looks() == [5, 10, 20, 40]
    assert Design(["a", "b"], 0.05, 4, 4).planned_looks() == [4]
    assert Design(["a", "b"], 0.05, 3, 10).next_look(4) == 6


def test_each_look_spends_its_share_split_over_arms_and_aggregates() -> None:
    """alpha * (n / max)^3 spent by a look at n; the shares of the planned looks add up
    to alpha (the union bound's total); each interval gets its look's share over
    (arms - 1) x aggregates."""
    design = Design(["a", "b", "c"], band=0.05, min_pairs=3, max_pairs=10)
    shares = [design.share(n, p) for n, p in ((3, 0), (6, 3), (10, 6))]
    assert shares == pytest.approx([0.05 * 0.027, 0.05 * (0.216 - 0.027), 0.05 * 0.784])
    assert sum(shares) == pytest.approx(0.05)
    assert design.interval_alpha(shares[2], 4) == pytest.approx(0.05 * 0.784 / (2 * 4))
    assert design.share(12, 10) == 0  # nothing is left after the last look


def test_only_a_look_decides_and_a_budget_end_is_one() -> None:
    """A slowdown every interval sees at once: between looks (4 pairs) nothing decides;
    at the planned look (6) and at a budget end between looks (5) it does, each at the
    share spent since the look before."""
    rng = np.random.default_rng(3)
    times, blocks = _aa_experiment(rng, 6, slowdown=3.0)
    design = Design(["a", "b"], band=0.05, min_pairs=3, max_pairs=10)
    pairs = [p for block in blocks for p in block]
    between = look(times, pairs[:4], design, previous=3)
    assert not between.made and {e.decision for e in between.estimates} == {"undecided"}
    assert between.share == pytest.approx(design.share(6, 3))  # what the next look spends
    assert between.next_look == 6
    for n, final in ((6, False), (5, True)):
        made = look(times, pairs[:n], design, previous=3, final=final)
        assert made.made and made.share == pytest.approx(design.share(n, 3))
        (e,) = [e for e in made.estimates if e.name == "all_reduce" and e.kind != "row"]
        assert e.decision == "slower"
        _, low, high = t_interval(np.log(e.ratios), made.confidence)
        assert (e.low, e.high) == pytest.approx((low, high))
        assert made.confidence == pytest.approx(1 - design.share(n, 3) / 3)  # 3 aggregates


def _look(decisions: list[str], pairs: int) -> Look:
    from commbench.analysis.ab import Estimate

    made = [
        Estimate("b", "collective", str(i), [], 1.0, 0.9, 1.1, d) for i, d in enumerate(decisions)
    ]
    return Look(pairs, 0.99, made, made=pairs >= 3)


@pytest.mark.parametrize(
    ("decisions", "pairs", "more", "said"),
    [
        (["equivalent", "equivalent"], 2, True, "sampling"),  # below min_pairs
        (["equivalent", "equivalent"], 2, False, "undecided"),
        (["equivalent", "faster"], 3, True, "decided"),
        (["equivalent", "undecided"], 3, True, "sampling"),
        (["slower", "equivalent"], 3, True, "regression"),
        (["slower", "undecided"], 3, True, "sampling"),  # every interval decides first
        (["slower", "undecided"], 5, False, "regression"),
        (["equivalent", "undecided"], 5, False, "undecided"),
    ],
)
def test_the_verdict_after_a_look(decisions, pairs, more, said) -> None:
    design = Design(["a", "b"], band=0.05, min_pairs=3, max_pairs=5)
    assert verdict(_look(decisions, pairs), design, more) == said


def _aa_experiment(rng: np.random.Generator, blocks: int, slowdown: float = 1.0):
    """Launches of two identical arms (but for `slowdown` on all_reduce): a shared state
    per launch and each row's own noise, in ABBA order."""
    times, pairs = {}, []
    base = np.array([100.0, 200.0, 50.0])
    for block in range(blocks):
        for index in (2 * block, 2 * block + 1):
            drift = rng.normal(0, 0.08) + rng.normal(0, 0.05, 3)
            times[index] = launch((base * np.exp(drift)).tolist())
        times[2 * block + 1] = times[2 * block + 1] * np.array([1.0, 1.0, slowdown])
        pairs.append([Pair("b", block, 2 * block, 2 * block + 1)])
    return times, pairs


def test_repeated_looks_keep_false_alarms_within_alpha() -> None:
    """A/A, a look after every pair from 3 to 10: at most 5% end in a regression, where
    95% intervals recomputed at each look (no correction) alarm more often than that."""
    rng = np.random.default_rng(7)
    design = Design(["a", "b"], band=0.01, min_pairs=3, max_pairs=10)
    alarms, naive = 0, 0
    experiments = 300
    for _ in range(experiments):
        times, blocks = _aa_experiment(rng, 10)
        _, said = replay(times, blocks, design)
        alarms += said == "regression"
        logs = np.array([np.log(times[b[0].launch] / times[b[0].reference]) for b in blocks])
        aggregates = [logs.mean(axis=1), logs[:, :2].mean(axis=1), logs[:, 2]]
        naive += any(
            t_interval(series[:n], 0.95)[1] > 1.01 for n in range(3, 11) for series in aggregates
        )
    assert alarms / experiments <= 0.05
    assert naive / experiments > 0.05  # the scenario can show the difference


def test_a_large_slowdown_is_found() -> None:
    rng = np.random.default_rng(11)
    design = Design(["a", "b"], band=0.05, min_pairs=3, max_pairs=10)
    times, blocks = _aa_experiment(rng, 10, slowdown=2.0)
    last, said = replay(times, blocks, design)
    assert said == "regression"
    (e,) = [e for e in last.estimates if e.name == "all_reduce" and e.kind != "row"]
    assert e.decision == "slower" and e.low > 1.05


def test_one_pair_has_no_interval_and_records_it_as_null() -> None:
    times = {0: launch([1.0, 2.0, 3.0]), 1: launch([1.1, 2.2, 3.3])}
    got = look(times, [Pair("b", 0, 0, 1)], Design(["a", "b"], 0.05, 3, 5))
    overall = next(e for e in got.estimates if e.name == "overall")
    assert overall.ratio == pytest.approx(1.1) and overall.decision == "undecided"
    assert (overall.record()["low"], overall.record()["high"]) == (None, None)


def test_pairs_that_agree_exactly_give_no_interval_never_a_zero_width_one() -> None:
    ratio, low, high = t_interval(np.log([1.1, 1.1, 1.1]), 0.95)
    assert ratio == pytest.approx(1.1) and math.isnan(low) and math.isnan(high)


def test_an_interval_wider_than_a_float_holds_is_none() -> None:
    """Two pairs far apart at a tiny alpha: the interval's ends overflow; it says nothing
    and is recorded as no interval, never as inf or an error."""
    ratio, low, high = t_interval(np.log([1e-3, 1e3]), 1 - 1e-9)
    assert ratio == pytest.approx(1.0) and math.isnan(low) and math.isnan(high)
