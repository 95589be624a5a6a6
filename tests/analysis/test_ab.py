"""The A/B experiment's statistics on tables of per-launch times: both families against a
direct numpy/scipy computation, the planned looks at even pair counts and their shares of
alpha, one-sided decisions that stick, the confidence sequence that extends the plan
(its error rate simulated past the horizon), rows adjusted for every row, and the
procedure's false alarms under repeated looks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from commbench.analysis.ab import (
    Design,
    Estimate,
    Look,
    Pair,
    decide,
    launch_times,
    look,
    replay,
    verdict,
)
from commbench.analysis.ab.look import PREFILL, ROWS_ALPHA, one_sided_bounds
from commbench.analysis.ab.plan import SEQUENCE_SHARE, SPENDING_POWER
from commbench.analysis.ab.sequence import MIXTURE_G, half_width
from commbench.rundir.schema import KEY_COLUMNS

pytestmark = pytest.mark.floor

# two collectives, list and tensor, decode- and prefill-sized: 6 rows
ROWS = [
    ("all_gather", "list", 8),
    ("all_gather", "tensor", 8),
    ("all_gather", "tensor", 2048),
    ("all_reduce", "tensor", 8),
    ("all_reduce", "tensor", 64),
    ("all_reduce", "tensor", 2048),
]


def key(collective: str, variant: str, tokens: int) -> tuple:
    return (collective, variant, "gloo", 2, 1, 2, "float32", tokens, 32, 0, 0, 0, 0.0)


INDEX = pd.MultiIndex.from_tuples([key(*r) for r in ROWS], names=KEY_COLUMNS)


def launch(times: list[float]) -> pd.Series:
    return pd.Series(times, index=INDEX[: len(times)], dtype=float)


def test_launch_times_keep_measured_rows_by_key() -> None:
    frame = pd.DataFrame([dict(zip(KEY_COLUMNS, key(*r), strict=True)) for r in ROWS[:3]])
    frame["time_us"] = [10.0, 20.0, 30.0]
    frame["check"] = ["pass", "skip", "pass"]
    got = launch_times(frame)
    assert got.to_dict() == {key(*ROWS[0]): 10.0, key(*ROWS[2]): 30.0}


def test_one_sided_bounds_are_scipys_t_at_alpha_each_side() -> None:
    logs = np.log([1.10, 1.31, 0.97, 1.22])
    low, high = one_sided_bounds(logs, 0.01)
    q = stats.t.ppf(0.99, 3) * stats.sem(logs)
    assert (low, high) == pytest.approx((math.exp(logs.mean() - q), math.exp(logs.mean() + q)))
    assert math.isnan(one_sided_bounds(logs[:1], 0.01)[0])  # one pair shows no spread
    assert math.isnan(one_sided_bounds(np.log([1.1, 1.1, 1.1]), 0.01)[0])  # nor exact agreement
    assert math.isnan(one_sided_bounds(np.log([1e-3, 1e3]), 1e-9)[0])  # nor beyond a float


def test_the_confidence_sequence_is_where_the_t_mixture_reaches_one_over_alpha() -> None:
    """At the sequence's bound the t test's Bayes factor (normal prior on the effect,
    right-Haar on the scale) is exactly 1/alpha; inside it, below."""
    rng = np.random.default_rng(0)
    values = rng.normal(0.02, 0.05, 20)
    alpha, n, g = 0.01, len(values), MIXTURE_G
    half = half_width(values, alpha)

    def bayes_factor(mu: float) -> float:
        t = (values.mean() - mu) / stats.sem(values)
        nu, a = n - 1, 1 + n * g
        return a**-0.5 * ((1 + t * t / nu) / (1 + t * t / (a * nu))) ** ((nu + 1) / 2)

    assert bayes_factor(values.mean() + half) == pytest.approx(1 / alpha)
    assert bayes_factor(values.mean() - 0.5 * half) < 1 / alpha
    solved = optimize.brentq(lambda d: bayes_factor(values.mean() + d) - 1 / alpha, 0, 1)
    assert half == pytest.approx(solved)
    assert half_width(values[:5], alpha) == math.inf  # too few yet to bound the mean
    assert half > stats.t.ppf(1 - alpha / 2, n - 1) * stats.sem(values)  # the price of anytime


def test_looks_come_at_even_pair_counts_and_the_horizon_stays_planned() -> None:
    assert Design(["a", "b"], 0.05, 4, 10).planned_looks() == [4, 6, 10]
    assert Design(["a", "b"], 0.05, 4, 16).planned_looks() == [4, 6, 10, 12, 14, 16]
    assert Design(["a", "b"], 0.05, 4, 6).planned_looks() == [4, 6]
    assert Design(["a", "b"], 0.05, 4, 10).next_look(7) == 10
    # a larger budget does not thin the early looks: spent against the planned horizon
    small, large = Design(["a", "b"], 0.05, 4, 10), Design(["a", "b"], 0.05, 4, 60)
    assert small.share(4, 0) == large.share(4, 0) > 0
    assert large.share(12, 10) == 0  # past the horizon only the sequence decides


def test_each_family_spends_its_planned_share_over_the_looks() -> None:
    """Each family (absolute, contrasts) has half of alpha: four fifths spent by the
    planned looks as (n / horizon)^3, split over the arms and the family's aggregates;
    the sequence has the last fifth over the same split."""
    design = Design(["a", "b", "c"], band=0.05, min_pairs=4, max_pairs=10)
    planned = 0.025 * (1 - SEQUENCE_SHARE)
    shares = [design.share(n, p) for n, p in ((4, 0), (6, 4), (10, 6))]
    expected = [planned * (f**SPENDING_POWER - e**SPENDING_POWER)
                for f, e in ((0.4, 0), (0.6, 0.4), (1.0, 0.6))]  # fmt: skip
    assert shares == pytest.approx(expected) and sum(shares) == pytest.approx(planned)
    assert design.test_alpha(shares[2], 4) == pytest.approx(shares[2] / (2 * 4))
    assert design.sequence_alpha(4) == pytest.approx(0.025 * SEQUENCE_SHARE / (2 * 4))


def _pairs(ref: list[list[float]], arm: list[list[float]]) -> tuple[dict, list[Pair]]:
    times, pairs = {}, []
    for block, (r, a) in enumerate(zip(ref, arm, strict=True)):
        times[2 * block], times[2 * block + 1] = launch(r), launch(a)
        pairs.append(Pair("b", block, 2 * block, 2 * block + 1))
    return times, pairs


def test_both_families_are_computed_within_each_pair_as_numpy_says() -> None:
    rng = np.random.default_rng(1)
    base = np.array([100.0, 200.0, 50.0, 80.0, 90.0, 400.0])
    ref = [(base * np.exp(rng.normal(0, 0.05, 6))).tolist() for _ in range(4)]
    arm = [(base * np.exp(rng.normal(0.1, 0.05, 6))).tolist() for _ in range(4)]
    times, pairs = _pairs(ref, arm)
    design = Design(["a", "b"], band=0.05, min_pairs=4, max_pairs=10)
    got = look(times, pairs, design)
    assert got.made and got.pairs == 4
    logs = np.log(np.array(arm) / np.array(ref))
    overall = logs.mean(axis=1)
    gather, reduce = logs[:, :3].mean(axis=1), logs[:, 3:].mean(axis=1)
    decode, prefill = logs[:, [0, 1, 3, 4]].mean(axis=1), logs[:, [2, 5]].mean(axis=1)
    expected = {
        ("overall", "overall"): overall,
        ("collective", "all_gather"): gather,
        ("collective", "all_reduce"): reduce,
        ("contrast", "all_gather"): gather - reduce,
        ("contrast", "all_reduce"): reduce - gather,
        ("size", PREFILL): prefill - decode,  # one contrast: decode's is its mirror
        # each collective's prefill-sized rows against its decode-sized ones
        ("collective size", "all_gather"): logs[:, 2] - logs[:, [0, 1]].mean(axis=1),
        ("collective size", "all_reduce"): logs[:, 5] - logs[:, [3, 4]].mean(axis=1),
    }
    share = design.share(4, 0)
    alphas = {"overall": share / 3, "collective": share / 3, "contrast": share / 5,
              "size": share / 5, "collective size": share / 5}  # fmt: skip
    assert got.alphas["absolute"] == pytest.approx(share / 3)
    assert got.alphas["contrast"] == pytest.approx(share / 5)
    deciding = {(e.kind, e.name) for e in got.estimates if e.kind != "row"}
    assert deciding == set(expected)
    for (kind, name), per_pair in expected.items():
        (e,) = [e for e in got.estimates if (e.kind, e.name) == (kind, name)]
        assert e.ratios == pytest.approx(np.exp(per_pair).tolist())
        q = stats.t.ppf(1 - alphas[kind], 3) * stats.sem(per_pair)
        bounds = (math.exp(per_pair.mean() - q), math.exp(per_pair.mean() + q))
        if e.by != "sequence":
            assert (e.low, e.high) == pytest.approx(bounds)
        assert e.decision == decide(*bounds, 0.05) or e.by == "sequence"
    rows = [e for e in got.estimates if e.kind == "row"]
    assert rows[0].name == "all_gather/list tp=2 dp=1 T=8 H=32 float32"
    for column, e in enumerate(rows):  # every row: its sequence, adjusted over the 6 rows
        half = half_width(logs[:, column], ROWS_ALPHA / 6)
        assert e.ratio == pytest.approx(math.exp(logs[:, column].mean()))
        assert math.isnan(e.low) or e.low == pytest.approx(math.exp(logs[:, column].mean() - half))


def test_rows_a_launch_lacks_are_left_out_and_counted() -> None:
    times = {0: launch([1.0, 2.0, 3.0, 4.0]), 1: launch([1.1, 2.2, 3.3])}
    times |= {2: launch([1.0, 2.0, 3.0, 4.0]), 3: launch([1.2, 2.1, 3.3, 4.1])}
    pairs = [Pair("b", 0, 0, 1), Pair("b", 1, 2, 3)]
    got = look(times, pairs, Design(["a", "b"], 0.05, 2, 2))
    assert got.missing_rows == 1
    assert {e.name for e in got.estimates if e.kind != "row"} == {"overall", "all_gather",
                                                                  PREFILL}  # fmt: skip


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


def _aa(rng: np.random.Generator, blocks: int, ratio: float = 1.0, sd: float = 0.03):
    """Two arms' launches: a state shared by every row of a launch (sd 0.08) and each
    row's own noise (`sd`); the arm's all_reduce rows `ratio` times slower; ABBA pairs."""
    times, pairs = {}, []
    base = np.array([100.0, 200.0, 50.0, 80.0, 90.0, 400.0])
    slowed = np.array([1.0, 1.0, 1.0, ratio, ratio, ratio])
    for block in range(blocks):
        for index in (2 * block, 2 * block + 1):
            times[index] = launch(base * np.exp(rng.normal(0, 0.08) + rng.normal(0, sd, 6)))
        times[2 * block + 1] = times[2 * block + 1] * slowed
        pairs.append([Pair("b", block, 2 * block, 2 * block + 1)])
    return times, pairs


def test_a_decision_made_sticks_whatever_the_later_pairs_say() -> None:
    """At 4 pairs all_reduce is slower beyond doubt; the next pairs are planted faster:
    the decision stands (its interval and the pairs it was made at with it)."""
    rng = np.random.default_rng(2)
    early, _ = _aa(rng, 4, ratio=2.0, sd=0.01)
    late, _ = _aa(rng, 6, ratio=0.9, sd=0.01)
    times = dict(early) | {8 + i: late[i] for i in range(12)}
    blocks = [[Pair("b", b, 2 * b, 2 * b + 1)] for b in range(10)]
    design = Design(["a", "b"], band=0.05, min_pairs=4, max_pairs=10)
    last, said = replay(times, blocks, design)
    (e,) = [e for e in last.estimates if (e.kind, e.name) == ("collective", "all_reduce")]
    assert e.decision == "slower" and e.pairs == 4 and e.by == "plan"
    assert said == "regression"


def test_a_change_of_one_collective_shows_in_its_contrast_not_in_the_absolute_ratios() -> None:
    """Launches that drift together by 8% (sd), all_reduce 1.10x under the arm: its
    absolute ratio drowns in the drift, its contrast against the launch does not."""
    rng = np.random.default_rng(3)
    found = {"contrast": 0, "collective": 0}
    for _ in range(40):
        times, blocks = _aa(rng, 10, ratio=1.10, sd=0.01)
        last, _ = replay(times, blocks, Design(["a", "b"], 0.05, 4, 10))
        for kind in found:
            (e,) = [e for e in last.estimates if (e.kind, e.name) == (kind, "all_reduce")]
            found[kind] += e.decision == "slower"
    assert found["contrast"] >= 36 and found["collective"] <= 10


def test_an_extension_past_the_horizon_keeps_its_error_rate() -> None:
    """True ratio exactly at the band's edge (1.05): a look at every even count up to 60
    pairs (the plan to 10, the sequence past it): the share of experiments that ever
    decide 'slower' stays within the family's alpha for one aggregate."""
    rng = np.random.default_rng(4)
    design = Design(["a", "b"], band=0.05, min_pairs=4, max_pairs=60)
    wrong, experiments = 0, 400
    for _ in range(experiments):
        times, blocks = {}, []
        for block in range(60):
            times[2 * block] = launch([100.0])
            times[2 * block + 1] = launch([100.0 * math.exp(rng.normal(math.log(1.05), 0.04))])
            blocks.append([Pair("b", block, 2 * block, 2 * block + 1)])
        last, _ = replay(times, blocks, design)
        (e,) = [e for e in last.estimates if e.kind == "overall"]
        wrong += e.decision == "slower"
    assert wrong / experiments <= design.family_alpha()


def _look(decisions: list[str], pairs: int) -> Look:
    made = [
        Estimate("b", "collective", str(i), [], 1.0, 0.9, 1.1, d) for i, d in enumerate(decisions)
    ]
    return Look(pairs, made, made=pairs >= 4)


@pytest.mark.parametrize(
    ("decisions", "pairs", "more", "said"),
    [
        (["equivalent", "equivalent"], 2, True, "sampling"),  # below min_pairs
        (["equivalent", "equivalent"], 2, False, "undecided"),
        (["equivalent", "faster"], 4, True, "decided"),
        (["equivalent", "undecided"], 4, True, "sampling"),
        (["slower", "equivalent"], 4, True, "regression"),
        (["slower", "undecided"], 4, True, "sampling"),  # every interval decides first
        (["slower", "undecided"], 6, False, "regression"),
        (["equivalent", "undecided"], 6, False, "undecided"),
    ],
)
def test_the_verdict_after_a_look(decisions, pairs, more, said) -> None:
    design = Design(["a", "b"], band=0.05, min_pairs=4, max_pairs=6)
    assert verdict(_look(decisions, pairs), design, more) == said


def test_repeated_looks_keep_false_alarms_within_alpha() -> None:
    """A/A, the command's looks over 10 pairs: at most 5% end in a regression, where 95%
    intervals recomputed after every pair (no correction) alarm more often than that."""
    rng = np.random.default_rng(7)
    design = Design(["a", "b"], band=0.01, min_pairs=4, max_pairs=10)
    alarms, naive, experiments = 0, 0, 300
    for _ in range(experiments):
        times, blocks = _aa(rng, 10)
        _, said = replay(times, blocks, design)
        alarms += said == "regression"
        logs = np.array([np.log(times[b[0].launch] / times[b[0].reference]) for b in blocks])
        series = [logs.mean(axis=1), logs[:, :3].mean(axis=1), logs[:, 3:].mean(axis=1)]
        naive += any(one_sided_bounds(s[:n], 0.025)[0] > 1.01 for n in range(3, 11) for s in series)
    assert alarms / experiments <= 0.05
    assert naive / experiments > 0.05  # the scenario can show the difference


def test_one_pair_has_no_interval_and_records_it_as_null() -> None:
    times = {0: launch([1.0, 2.0, 3.0]), 1: launch([1.1, 2.2, 3.3])}
    got = look(times, [Pair("b", 0, 0, 1)], Design(["a", "b"], 0.05, 4, 6))
    overall = next(e for e in got.estimates if e.name == "overall")
    assert overall.ratio == pytest.approx(1.1) and overall.decision == "undecided"
    assert (overall.record()["low"], overall.record()["high"]) == (None, None)
    assert Estimate.from_record(overall.record()).record() == overall.record()
