"""The gate's calibration pinned at its decision boundaries: every expected figure here is
computed from the model written in docs/gate.md (scipy's t, the prior's measured
figures), never read back from the gate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t
from support.runfixtures import key, write_run

from commbench.analysis.gate.judge import run_gate

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor

DRIFT = np.array([0.01, -0.01, 0.0, 0.02, -0.02])  # each history run's shared drift (log)
WOBBLE = np.array([0.02, -0.01, 0.03, -0.04, 0.0])  # each run's row wobble (log)
SIGNS = [1, -1, 1, -1]  # the wobble's sign per row: the rows' mean wobble is 0 in a run
# gloo, 4 ranks, 5 rounds: the prior measured for configs/ci.toml
SHARED_SD, ROW_SD, GROUP_SD, PRIOR_DF = 0.105, 0.097, 0.022, 4


def _exact(median: float) -> np.ndarray:
    return np.full(12, median)  # every sample equal: the median is exactly this


def _nccl_history(tmp_path: Path) -> Path:
    """Five NCCL runs of four rows, 100 us each, run i moved by exp(DRIFT[i]) as a whole
    and row j by exp(SIGNS[j] * WOBBLE[i]) on its own: the baseline's geometric mean of
    every row is exactly 100, the overall drift's sd is DRIFT's, a row contrast's
    WOBBLE's, each with 4 degrees of freedom."""
    for i, (drift, wobble) in enumerate(zip(DRIFT, WOBBLE, strict=True)):
        write_run(
            tmp_path / "history" / f"run-{i}",
            [(key(backend="nccl", tokens=j + 1), _exact(100 * math.exp(drift + s * wobble)))
             for j, s in enumerate(SIGNS)],
            backend="nccl",
        )  # fmt: skip
    return tmp_path / "history"


def _nccl_now(tmp_path: Path, first: float, others: float = 1.0, name: str = "now") -> Path:
    rows = [(key(backend="nccl", tokens=j + 1), _exact(100 * (first if j == 0 else others)))
            for j in range(len(SIGNS))]  # fmt: skip
    return write_run(tmp_path / name, rows, backend="nccl")


def test_an_improvement_passes_the_one_sided_overall_test(tmp_path: Path) -> None:
    history = _nccl_history(tmp_path)
    result = run_gate([history], _nccl_now(tmp_path, 0.5, 0.5), detect=1.5)
    (overall,) = result.aggregates.itertuples()
    assert overall.status == "improvement" and overall.high < 1
    assert result.exit_code == 0, result.verdict()


def test_a_row_just_inside_and_just_outside_its_interval(tmp_path: Path) -> None:
    """Row 1 alone slower by r: its contrast against the run is 3/4 log r (the overall
    mean takes a quarter of it), judged one-sided at 1% over the 4 rows (Bonferroni)
    on the wobble's sd with 4 df, against the mean of 5 runs."""
    history = _nccl_history(tmp_path)
    scale = np.std(WOBBLE, ddof=1) * math.sqrt(1 + 1 / 5)
    boundary = math.exp(t.ppf(1 - 0.01 / 4, 4) * scale / 0.75)
    assert boundary > 1.2  # the tolerance (5%) does not bind: the test does
    for factor, expected in ((1.01, "regression"), (1 / 1.01, "noise")):
        now = _nccl_now(tmp_path, boundary * factor, name=f"now-{factor}")
        rows = run_gate([history], now, tolerance=0.05, detect=2).rows.set_index("tokens")
        assert rows.loc[1, "status"] == expected, (factor, rows.loc[1].to_dict())
        assert rows.loc[1, "contrast"] == pytest.approx((boundary * factor) ** 0.75)
        assert rows.loc[1, "low"] == pytest.approx((boundary * factor) ** 0.75 / boundary**0.75)
        # p is one-sided: below the row's level exactly when the low end is above 1
        assert (rows.loc[1, "p_value"] < 0.01 / 4) == (expected == "regression")


def _gloo_pair(tmp_path: Path, rows: int, groups: int = 1) -> tuple[list[Path], Path]:
    collectives = ["all_gather", "reduce_scatter"][:groups]
    keys = [key(collective=c, tokens=j + 1) for c in collectives for j in range(rows // groups)]
    base = write_run(tmp_path / f"base-{rows}", [(k, _exact(100)) for k in keys], rounds=5)
    now = write_run(tmp_path / f"now-{rows}", [(k, _exact(130)) for k in keys], rounds=5)
    return [base], now


@pytest.mark.parametrize("rows", [2, 8])
def test_the_overall_interval_is_the_priors_for_that_many_rows(tmp_path: Path, rows: int) -> None:
    """One gloo baseline: the overall test's half-width is t(0.99, 4) (the prior's weight)
    times the prior's sd of a mean over `rows` rows, times sqrt(2) (both runs drift)."""
    result = run_gate(*_gloo_pair(tmp_path, rows), detect=10)
    (overall,) = result.aggregates.itertuples()
    sd = math.sqrt(SHARED_SD**2 + ROW_SD**2 / rows)
    half = t.ppf(0.99, PRIOR_DF) * sd * math.sqrt(2)
    assert (overall.low, overall.high) == pytest.approx(
        (1.3 * math.exp(-half), 1.3 * math.exp(half)), rel=1e-6
    )
    assert overall.spread_df == PRIOR_DF and overall.spread_sd == pytest.approx(sd)


@pytest.mark.parametrize("rows", [2, 8])
def test_a_row_contrasts_interval_is_the_priors(tmp_path: Path, rows: int) -> None:
    """A row less its run's mean: the unshared part of the group drift and the row's own
    wobble less its share of the mean, t at 1% over `rows` rows."""
    result = run_gate(*_gloo_pair(tmp_path, rows), detect=10)
    sd = math.sqrt(GROUP_SD**2 + ROW_SD**2 * (1 - 1 / rows))
    half = t.ppf(1 - 0.01 / rows, PRIOR_DF) * sd * math.sqrt(2)
    row = result.rows.iloc[0]
    assert row["contrast"] == pytest.approx(1.0)
    assert (row["low"], row["high"]) == pytest.approx((math.exp(-half), math.exp(half)), rel=1e-6)


def test_a_collective_contrasts_interval_and_detectable_shift(tmp_path: Path) -> None:
    """Two collectives of 4 rows: each against the run at 1% over the 2 collectives; its
    detectable shift is that of the contrast, which a collective's own slowdown moves by
    only half (the overall mean takes the other half)."""
    result = run_gate(*_gloo_pair(tmp_path, 8, groups=2), detect=10)
    collective = result.aggregates.set_index("test").loc["collective"].iloc[0]
    sd = math.sqrt(GROUP_SD**2 + ROW_SD**2 * (1 / 4 - 1 / 8))
    half = t.ppf(1 - 0.01 / 2, PRIOR_DF) * sd * math.sqrt(2)
    assert (collective["low"], collective["high"]) == pytest.approx(
        (math.exp(-half), math.exp(half)), rel=1e-6
    )
    # diluted by the others' half: the contrast moves by the square root of the shift, so
    # the collective's own detectable shift is the contrast's squared
    from commbench.analysis.gate.judge import AGGREGATE_TOLERANCE
    from commbench.analysis.gate.power import detectable_shift
    from commbench.analysis.stats import Spread, one_sided

    tolerance = AGGREGATE_TOLERANCE["gloo"]
    contrast = detectable_shift(Spread(sd, PRIOR_DF, ""), 1, tolerance, one_sided(0.01, 2))
    assert collective["detectable"] == pytest.approx(contrast**2, rel=1e-6)
    assert collective["detectable"] ** 0.5 > math.exp(half)


def _nccl_reruns(tmp_path: Path, factors: list[float]) -> list[Path]:
    """Current runs of every row `factors[c]` times the history's 100 us, one run each."""
    return [_nccl_now(tmp_path, factor, factor, name=f"rerun-{c}")
            for c, factor in enumerate(factors)]  # fmt: skip


def _overall_half(currents: int) -> float:
    """The overall test's half-width against the NCCL history: no prior, so the history's
    spread of the runs' shared drift (DRIFT's sd, 4 df), one-sided at 1%, on the mean of
    `currents` current runs against the mean of 5 baseline runs."""
    return t.ppf(0.99, 4) * np.std(DRIFT, ddof=1) * math.sqrt(1 / currents + 1 / 5)


def _overall_detectable(currents: int, runs: int = 5) -> float:
    """The overall test's detectable shift at tolerance 0 with `runs` baseline runs
    spreading as DRIFT (df runs - 1): scipy's noncentral t, caught 9 times in 10, with
    the spread at its 90% upper confidence bound (chi-squared)."""
    from scipy.optimize import brentq
    from scipy.stats import chi2, nct

    df = runs - 1
    critical = t.ppf(0.99, df)
    noncentrality = brentq(lambda nc: nct.sf(critical, df, nc) - 0.9, 0, 200)
    upper = np.std(DRIFT, ddof=1) * math.sqrt(df / chi2.ppf(0.10, df))
    return math.exp(noncentrality * upper * math.sqrt(1 / currents + 1 / runs))


def test_the_overall_interval_of_three_current_runs_is_t_s_sqrt_of_a_third_and_a_fifth(
    tmp_path: Path,
) -> None:
    """Three reruns judged together: each row's current time is the geometric mean of its
    medians in them, and the overall test's half-width is t(0.99, 4) s sqrt(1/3 + 1/5);
    its detectable shift solves scipy's noncentral t on that scale, and the baseline runs
    it would need for 1.05x are the first count whose detectable shift is no more."""
    history = _nccl_history(tmp_path)
    factors = [1.1 * math.exp(0.03), 1.1 * math.exp(-0.01), 1.1]
    result = run_gate([history], _nccl_reruns(tmp_path, factors), aggregate_tolerance=0.0,
                      detect=1.05)  # fmt: skip
    (overall,) = result.aggregates.itertuples()
    mean = float(np.log(factors).mean())  # every row's log ratio: the history's mean is 100
    half = _overall_half(3)
    assert (overall.low, overall.high) == pytest.approx(
        (math.exp(mean - half), math.exp(mean + half)), rel=1e-6
    )
    assert overall.spread_df == 4 and overall.spread_sd == pytest.approx(np.std(DRIFT, ddof=1))
    assert overall.currents == 3 and set(result.rows["currents"]) == {3}
    assert result.rows["current_us"].to_numpy() == pytest.approx(100 * math.exp(mean))
    assert overall.detectable == pytest.approx(_overall_detectable(3), rel=2e-3)
    assert overall.status == "regression"  # seen, whatever its power
    needed = next(runs for runs in range(5, 500) if _overall_detectable(3, runs) <= 1.05)
    assert overall.needed == needed > 5


def test_a_shift_one_run_cannot_show_three_reruns_catch(tmp_path: Path) -> None:
    """Every row k times slower, k between the overall test's boundary with three current
    runs and with one (from the model, by hand): the first rerun alone is not flagged and
    cannot see the asked 1.10x (exit 4); the three together are flagged (exit 1), their
    small drifts apart averaged out."""
    history = _nccl_history(tmp_path)
    one, three = math.exp(_overall_half(1)), math.exp(_overall_half(3))
    shift = math.sqrt(one * three)
    drifts = [0.002, -0.002, 0.0]
    assert three * math.exp(0.002) < shift < one * math.exp(-0.002) and shift > 1.03
    assert _overall_detectable(1) > 1.10  # the tolerance only adds to it
    reruns = _nccl_reruns(tmp_path, [shift * math.exp(d) for d in drifts])
    alone = run_gate([history], reruns[0])
    (overall,) = alone.aggregates.itertuples()
    assert overall.status == "insufficient" and overall.low < 1 and alone.exit_code == 4
    together = run_gate([history], reruns)
    (overall,) = together.aggregates.itertuples()
    assert overall.status == "regression" and overall.low > 1 and together.exit_code == 1


def test_two_baseline_runs_far_apart_leave_the_gate_blind_not_broken(tmp_path: Path) -> None:
    """Two NCCL baseline runs (no prior: one degree of freedom) whose 20 rows moved apart
    by exp(+-0.8), the run's mean not at all: the overall test has no spread (the runs
    agree to within rounding), and at a row's level (1% over 20 rows) the shift a row
    would need to be caught 9 times in 10 is beyond a float. The gate cannot see (exit 4)."""
    signs = [1, -1] * 10
    for i, move in enumerate((0.0, 0.8)):
        write_run(
            tmp_path / "history" / f"run-{i}",
            [(key(backend="nccl", tokens=j + 1), _exact(100 * math.exp(move * s)))
             for j, s in enumerate(signs)],
            backend="nccl",
        )  # fmt: skip
    now = write_run(
        tmp_path / "now", [(key(backend="nccl", tokens=j + 1), _exact(100)) for j in range(20)],
        backend="nccl", label="now",  # not the first baseline run, which it equals
    )  # fmt: skip
    result = run_gate([tmp_path / "history"], now, detect=2)
    assert result.exit_code == 4, result.verdict()
    (overall,) = result.aggregates.itertuples()
    assert overall.status == "insufficient" and math.isnan(overall.spread_sd)
    assert np.isinf(result.rows["detectable"]).all()


def test_two_collectives_far_apart_leave_their_contrasts_blind_not_broken(tmp_path: Path) -> None:
    """Two NCCL baseline runs in which two collectives of 10 rows moved apart by exp(+-4)
    and their rows by exp(+-4) more: each collective's contrast, which its own slowdown
    moves by only half, would need a shift beyond a float to be caught 9 times in 10."""

    def rows(move: float) -> list:
        sides = (("all_gather", 1), ("reduce_scatter", -1))
        return [(key(backend="nccl", collective=c, tokens=j + 1),
                 _exact(100 * math.exp(move * (side + (-1) ** j))))
                for c, side in sides for j in range(10)]  # fmt: skip

    for i, move in enumerate((0.0, 4.0)):
        write_run(tmp_path / "history" / f"run-{i}", rows(move), backend="nccl")
    now = write_run(tmp_path / "now", rows(0.0), backend="nccl", label="now")  # not run-0
    result = run_gate([tmp_path / "history"], now, detect=2)
    assert result.exit_code == 4, result.verdict()
    collectives = result.aggregates[result.aggregates["test"] == "collective"]
    assert np.isinf(collectives["detectable"]).all() and np.isinf(result.rows["detectable"]).all()


def test_gloos_default_tolerances_are_50_percent(tmp_path: Path) -> None:
    """50% for a row and for every aggregate on gloo: its VM's whole level moves 1.4 to
    1.8 times for stretches, which no history of it can tell from a regression."""
    result = run_gate(*_gloo_pair(tmp_path, 8, groups=2), detect=10)
    assert set(result.aggregates["tolerance"]) == {0.5}
    assert set(result.rows["tolerance"]) == {0.5}
