"""The rolling history: runs join only when comparable and when the gate saw no
regression, the window keeps the newest runs by count and age, a narrow history is said."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.cli import commbench_here
from support.runfixtures import key, samples_around, write_run

from commbench.analysis.gate.history import history_runs, record
from commbench.rundir.schema import RANK_SAMPLES_CSV

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor

ROWS = [key(backend="nccl", tokens=t) for t in (1, 2, 3)]
# The top of the next hour: day 1 (TODAY - 30 days) is then always just inside the history's
# 30-day window, whatever the hour the tests run at (the window is measured from now).
TODAY = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)


def _day(day: int) -> datetime:
    """Day 1 of a month that ended yesterday: day 30 is yesterday."""
    return TODAY - timedelta(days=31 - day)


def _run(tmp_path: Path, name: str, day: int, factor: float = 1.0, **meta) -> Path:
    path = write_run(
        tmp_path / "runs" / name,
        [(k, samples_around(100 * factor * (1 + 0.01 * (day % 3)), 12, 0.01, 7 * day + j))
         for j, k in enumerate(ROWS)],
        backend="nccl",
        started=_day(day).isoformat(),
        hostnames=[f"node-{day % 2}"],
        **meta,
    )  # fmt: skip
    (path / RANK_SAMPLES_CSV).write_text("rank samples\n")
    return path


def test_the_window_keeps_the_newest_runs_by_count_and_age(tmp_path: Path) -> None:
    history = tmp_path / "history"
    now = _day(20)
    for day in (1, 5, 10, 12, 14):
        done = record(history, _run(tmp_path, f"d{day}", day), keep=3, max_age_days=30, now=now)
    name = "run-{:%Y%m%dT%H%M%S}-d{}".format
    assert [r.path.name for r in done.runs] == [name(_day(d), d) for d in (10, 12, 14)]
    assert [p.name for p in done.dropped] == [name(_day(5), 5)]  # d1 went the call before
    assert not (done.path / RANK_SAMPLES_CSV).exists()  # the gate does not read it
    assert [r.path for r in history_runs(history)] == [r.path for r in done.runs]
    aged = record(history, _run(tmp_path, "d19", 19), keep=3, max_age_days=5, now=now)
    assert [r.path.name for r in aged.runs] == [name(_day(19), 19)]  # d14 is 6 days old
    # a run older than the window still joins when asked (alone, until the next one)
    late = record(history, _run(tmp_path, "d2", 2), keep=3, max_age_days=5, now=now)
    assert [r.path.name for r in late.runs] == [name(_day(2), 2), name(_day(19), 19)]


def test_a_run_not_comparable_is_refused_naming_what_differs(tmp_path: Path) -> None:
    history = tmp_path / "history"
    first = commbench_here("history", "add", str(history), str(_run(tmp_path, "a", 1)))
    assert first.returncode == 0, first.stdout
    other = _run(tmp_path, "b", 2, config_hash="other")
    done = commbench_here("history", "add", str(history), str(other))
    assert done.returncode == 3
    assert "not comparable: config_hash differs: history abc, run other" in done.stdout
    assert len(history_runs(history)) == 1
    bad = commbench_here("history", "add", str(history), str(other), "--keep", "0")
    assert bad.returncode == 2 and "keep: must be 1 or more (got 0)" in bad.stderr


def test_gate_record_adds_a_run_without_a_regression_only(tmp_path: Path) -> None:
    history = tmp_path / "history"
    for day in (1, 4, 7, 10, 13):
        commbench_here("history", "add", str(history), str(_run(tmp_path, f"d{day}", day)))
    listed = commbench_here("history", "list", str(history))
    assert "5 run(s)" in listed.stdout and "note" not in listed.stdout  # days apart
    slow = _run(tmp_path, "slow", 16, factor=1.5)
    assert commbench_here("gate", str(history), str(slow), "--record", str(history)).returncode == 1
    assert len(history_runs(history)) == 5  # a regression never joins
    clean = _run(tmp_path, "clean", 16)
    done = commbench_here("gate", str(history), str(clean), "--record", str(history))
    assert done.returncode == 0, done.stdout
    assert "recorded" in done.stdout and len(history_runs(history)) == 6
    # one baseline run of NCCL cannot see anything (exit 4): the run still joins
    young = tmp_path / "young"
    commbench_here("history", "add", str(young), str(_run(tmp_path, "y1", 1)))
    grown = commbench_here("gate", str(young), str(_run(tmp_path, "y2", 2)), "--record", str(young))
    assert grown.returncode == 4 and len(history_runs(young)) == 2


def test_gate_record_adds_every_current_run_judged_together(tmp_path: Path) -> None:
    history = tmp_path / "history"
    for day in (1, 4, 7, 10, 13):
        commbench_here("history", "add", str(history), str(_run(tmp_path, f"d{day}", day)))
    slow = [str(_run(tmp_path, f"slow-{day}", day, factor=1.5)) for day in (16, 17)]
    gated = commbench_here("gate", str(history), *slow, "--current-runs", "2", "--record",
                           str(history))  # fmt: skip
    assert gated.returncode == 1 and len(history_runs(history)) == 5
    clean = [str(_run(tmp_path, f"clean-{day}", day)) for day in (16, 17)]
    done = commbench_here("gate", str(history), *clean, "--current-runs", "2", "--record",
                          str(history))  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("recorded") == 2
    assert {r.path.name.split("-")[-1] for r in history_runs(history)} >= {"16", "17"}


def test_a_history_made_back_to_back_is_said(tmp_path: Path) -> None:
    history = tmp_path / "history"
    for minute in range(3):
        started = _day(30) + timedelta(minutes=minute)
        run = write_run(tmp_path / "runs" / f"m{minute}", [(k, samples_around(100)) for k in ROWS],
                        backend="nccl", started=started.isoformat())  # fmt: skip
        done = commbench_here("history", "add", str(history), str(run))
    assert "the 3 baseline runs span 2 minutes" in done.stdout
