"""The gate on real runs with several current runs (`--current-runs`): the real CLI on the
shared gloo sweeps, the current runs' figures checked against their files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from support.cli import SharedRun, commbench, commbench_here
from support.runfixtures import slowed_copy

from commbench.analysis.gate.history import history_runs
from commbench.rundir.schema import KEY_COLUMNS, RESULTS_CSV


@pytest.mark.parametrize("factors", [(1.0, 1.3), (1.0, 1.3, 1.6)])
def test_real_reruns_are_judged_together(
    local_run: SharedRun, forced_run: SharedRun, tmp_path: Path, factors: tuple[float, ...]
) -> None:
    """Run a is the baseline; run b and copies of it made slower are the current runs.
    Each row's current time is the geometric mean of b's median times the factors, and
    the overall interval is t(0.99, df) s sqrt(1/C + 1/1) on each side of its geomean."""
    from scipy.stats import t

    for shared in (local_run, forced_run):
        assert shared.done.returncode == 0, shared.done.stderr
    currents = [slowed_copy(forced_run.path, tmp_path / f"b-{f:g}", f) for f in factors]
    report, markdown = tmp_path / "g.json", tmp_path / "g.md"
    done = commbench(
        "gate", str(local_run.path), *map(str, currents), "--current-runs", str(len(currents)),
        "--json", str(report), "--markdown", str(markdown),
    )  # fmt: skip
    verdict = json.loads(report.read_text())
    assert verdict["exit_code"] == done.returncode, done.stderr
    assert verdict["baselines"] == [str(local_run.path)]
    assert verdict["currents"] == list(map(str, currents))

    a, b = (pd.read_csv(run.path / RESULTS_CSV).set_index(KEY_COLUMNS)["time_us"]
            for run in (local_run, forced_run))  # fmt: skip
    together = math.prod(factors) ** (1 / len(factors))
    compared = [row for row in verdict["rows"] if row["ratio"] is not None]
    assert compared and sum(verdict["counts"].values()) == 20
    for row in compared:
        key = tuple(row[c] for c in KEY_COLUMNS)
        assert row["baseline_us"] == pytest.approx(a[key])
        assert row["current_us"] == pytest.approx(b[key] * together)
        assert row["currents"] == len(factors) and row["baselines"] == 1

    (overall,) = [a for a in verdict["aggregates"] if a["test"] == "overall"]
    assert overall["currents"] == len(factors) and overall["baselines"] == 1
    half = t.ppf(0.99, overall["spread_df"]) * overall["spread_sd"]
    half *= math.sqrt(1 / len(factors) + 1)
    assert (overall["low"], overall["high"]) == pytest.approx(
        (overall["geomean"] * math.exp(-half), overall["geomean"] * math.exp(half)), rel=1e-6
    )
    words = f"{len(factors)} current runs"
    assert f"{words} together" in done.stdout  # the power note: they see more than one
    assert f"{words} together" in markdown.read_text()


def test_real_reruns_that_saw_no_regression_all_join_the_history(
    local_run: SharedRun, tmp_path: Path
) -> None:
    """Two reruns of a real run, 0.1% and 2% slower, judged together against it: nothing
    moved beyond the tolerance, so the gate passes or cannot see the asked shift (0 or 4);
    --record adds both to a young history, and neither a second time. (Two separately
    made runs would be honest data: on a loaded machine they may truly differ.)"""
    history = tmp_path / "history"
    currents = [
        slowed_copy(local_run.path, tmp_path / f"b{i}", f) for i, f in ((1, 1.001), (2, 1.02))
    ]
    args = ["gate", str(local_run.path), *map(str, currents), "--current-runs", "2"]
    done = commbench_here(*args, "--record", str(history))
    assert done.returncode in (0, 4), done.stdout
    assert [run.path.name.rsplit("-", 1)[-1] for run in history_runs(history)] == ["b1", "b2"]
    assert done.stdout.count("recorded") == 2
    again = commbench_here("history", "add", str(history), str(currents[1]))
    assert again.returncode == 2 and "is already in" in again.stderr
