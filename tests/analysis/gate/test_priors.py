"""Which measured between-run spread the gate assumes for a run: the shipped priors file,
a user's file over it, and the choice by backend, world size and rounds."""

from __future__ import annotations

import math

import pytest

from commbench.analysis.gate.priors import (
    PRIORS_FILE,
    load_priors,
    prior_for,
    prior_for_runs,
    shipped_priors,
    weigh,
)
from commbench.analysis.stats import Spread
from commbench.config.settings import read_toml
from commbench.errors import UsageError
from commbench.rundir.meta import RunMeta

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor

GLOO = shipped_priors()["gloo"]


def meta(world_size: int, rounds: int | None) -> RunMeta:
    config = {} if rounds is None else {"rounds": rounds}
    return RunMeta(
        schema_version=4, backend="gloo", world_size=world_size, layout="contiguous", config=config
    )


def test_a_measured_world_size_and_rounds_get_their_own_prior() -> None:
    assert prior_for("gloo", 2, 1) is GLOO[(2, 1)]
    assert prior_for("gloo", 2, 5) is GLOO[(2, 5)]
    assert prior_for("gloo", 4, 5) is GLOO[(4, 5)]


def test_more_rounds_than_measured_take_the_most_measured_and_fewer_never_borrow_more() -> None:
    # a prior from more rounds than the run took would be too narrow for it
    assert prior_for("gloo", 2, 8) is GLOO[(2, 5)]
    assert prior_for("gloo", 2, 4) is GLOO[(2, 1)]


def test_a_world_size_not_measured_gets_the_largest_figures_that_fit_its_rounds() -> None:
    eight = prior_for("gloo", 8, 5)
    assert eight is not None and eight.source == "gloo prior (largest measured)"
    assert eight.shared_sd == max(p.shared_sd for p in GLOO.values())
    assert eight.row_sd == max(p.row_sd for p in GLOO.values())
    assert eight.group_sd == 0.043  # the 2-rank one-round prior's, the largest measured
    # 4 ranks were measured with 5 rounds only: one round takes what one round spread
    one_round = prior_for("gloo", 4, 1)
    assert one_round is not None
    assert (one_round.shared_sd, one_round.row_sd) == (GLOO[(2, 1)].shared_sd, GLOO[(2, 1)].row_sd)


def test_a_backend_never_measured_has_no_prior() -> None:
    assert prior_for("nccl", 8, 5) is None


def test_runs_judged_together_take_the_fewest_rounds_any_took() -> None:
    assert prior_for_runs([meta(2, 5), meta(2, 5)]) is GLOO[(2, 5)]
    assert prior_for_runs([meta(2, 5), meta(2, 1)]) is GLOO[(2, 1)]
    assert prior_for_runs([meta(2, None), meta(2, 5)]) is GLOO[(2, 1)]  # before `rounds`: one


def test_the_ci_prior_weighs_four_degrees_of_freedom_with_its_measured_figures() -> None:
    prior = GLOO[(4, 5)]
    assert (prior.shared_sd, prior.row_sd, prior.group_sd, prior.runs) == (0.105, 0.097, 0.022, 90)
    assert prior.row() == Spread(math.hypot(0.105, 0.097), 4, prior.source)
    assert prior.aggregate(4).sd == pytest.approx(math.sqrt(0.105**2 + 0.097**2 / 4))
    assert prior.aggregate(4).df == 4
    assert prior.group_contrast(4, 8).sd == pytest.approx(math.sqrt(0.022**2 + 0.097**2 / 8))
    assert prior.row_contrast(8).sd == pytest.approx(math.sqrt(0.022**2 + 0.097**2 * 7 / 8))


def test_the_two_rank_priors_measured_figures_and_contrasts() -> None:
    one, five = GLOO[(2, 1)], GLOO[(2, 5)]
    assert (one.shared_sd, one.row_sd, one.group_sd, one.runs) == (0.190, 0.164, 0.043, 56)
    assert (five.shared_sd, five.row_sd, five.group_sd, five.runs) == (0.149, 0.091, 0.023, 56)
    # a group of 2 of 8 rows: the shared drift cancels, the group's own and the rows' do not
    assert one.group_contrast(2, 8).sd == pytest.approx(math.sqrt(0.043**2 + 0.164**2 * 3 / 8))
    assert one.row_contrast(8).sd == pytest.approx(math.sqrt(0.043**2 + 0.164**2 * 7 / 8))


def test_a_history_of_five_outweighs_the_prior_and_a_wider_one_drops_it() -> None:
    prior = Spread(0.1, 3, "prior")
    narrow = Spread(0.05, 4, "5 baseline runs")
    pooled = weigh(prior, narrow, measured_df=9)
    assert pooled.df == 7 and pooled.sd == pytest.approx(math.sqrt((3 * 0.01 + 4 * 0.0025) / 7))
    # F(4, 9) at 95% is 3.63: a history whose variance is 4 times the prior's drops it
    wide = Spread(0.2, 4, "5 baseline runs")
    assert weigh(prior, wide, measured_df=9) == wide
    assert weigh(prior, Spread(0.18, 4, ""), measured_df=9).df == 7  # 3.24 times: kept
    assert weigh(prior, None, measured_df=9) == prior and weigh(None, narrow, 9) == narrow


def test_the_shipped_file_says_where_when_and_how_each_prior_was_measured() -> None:
    data = read_toml(PRIORS_FILE)
    assert data["nccl"]["priors"] == []  # none measured yet
    entries = data["gloo"]["priors"]
    assert len(entries) == len(GLOO) == 3
    for entry in entries:
        assert entry["machine"] and entry["sweep"].startswith("commbench sweep")
        assert entry["command"].startswith("python benchmarks/gate_power.py fit")
        assert entry["measured"].year >= 2026  # a TOML date, read as one
        assert GLOO[(entry["world_size"], entry["rounds"])].runs == entry["runs"]


GLOO_ENTRY = """
[[gloo.priors]]
world_size = 4
rounds = 5
shared_sd = 0.2
row_sd = 0.1
group_sd = 0.05
runs = 40
machine = "our CI runner"
measured = 2027-01-05
sweep = "commbench sweep --nproc 4 --config configs/ci.toml"
command = "python benchmarks/gate_power.py fit RUNS"
"""
USER_FILE = (
    """
[[nccl.priors]]
world_size = 8
rounds = 1
shared_sd = 0.01
row_sd = 0.02
group_sd = 0.005
runs = 30
machine = "8 x H100 SXM, NVLink, NCCL 2.28.9"
measured = 2027-01-05
sweep = "commbench sweep --config configs/ci.toml"
command = "python benchmarks/gate_power.py fit RUNS"
"""
    + GLOO_ENTRY
)


def test_a_users_file_adds_priors_and_replaces_the_shipped_one_it_names(tmp_path) -> None:
    path = tmp_path / "ours.toml"
    path.write_text(USER_FILE)
    table = load_priors(path)
    nccl = prior_for("nccl", 8, 1, table)
    assert nccl is not None and (nccl.shared_sd, nccl.runs) == (0.01, 30)
    assert nccl.source == "nccl prior (8 ranks, ours.toml)"
    assert prior_for("gloo", 4, 5, table).shared_sd == 0.2  # replaced
    assert prior_for("gloo", 2, 1, table) is not None  # the others kept
    assert prior_for("gloo", 4, 5) is GLOO[(4, 5)]  # the shipped table is untouched


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (USER_FILE.replace("shared_sd = 0.01", "shared_sd = -1"), "shared_sd: Input should be"),
        (USER_FILE.replace("runs = 30", "runs = 30\nwho = 1"), "unknown key"),
        (USER_FILE + GLOO_ENTRY, "gloo: world_size 4 rounds 5 given twice"),
        ("[[nccl.priors]]\nworld_size = 8\n", "field required"),
    ],
)
def test_a_bad_priors_file_is_one_line_naming_the_file(tmp_path, text: str, said: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=f"priors {path}") as raised:
        load_priors(path)
    assert said.lower() in str(raised.value).lower() and "\n" not in str(raised.value)
