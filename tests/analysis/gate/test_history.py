"""The rolling history: runs join only when comparable and when the gate saw no
regression, the window keeps the newest runs by count and age, a narrow history is said."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.cli import commbench_here
from support.runfixtures import key, samples_around, write_run

from commbench.analysis.gate.history import history_runs, pinned_runs, read_ledger, record
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


def _nccl(tmp_path: Path, name: str, factor: float, hour: int, **meta) -> Path:
    """An NCCL run of ROWS at `factor` times 100 us, drifting 0.5% by its hour."""
    drift = 1 + 0.005 * ((hour * 7) % 3 - 1)
    rows = [(k, samples_around(100 * factor * drift, 12, 0.002, hour * 10 + j))
            for j, k in enumerate(ROWS)]  # fmt: skip
    started = (TODAY - timedelta(days=20) + timedelta(hours=hour)).isoformat()
    return write_run(tmp_path / "runs" / name, rows, backend="nccl", started=started,
                     hostnames=["node-a"], **meta)  # fmt: skip


def _seeded(tmp_path: Path, factors: list[float], keep: int = 20) -> Path:
    """A history whose first five runs (at 1.0) are pinned, then runs at `factors`."""
    history = tmp_path / "history"
    seed = [_nccl(tmp_path, f"seed-{i}", 1.0, i) for i in range(5)]
    for run in seed:
        assert commbench_here("history", "add", str(history), str(run)).returncode == 0
    pinned = commbench_here("history", "pin", str(history), *map(str, seed), "--reason",
                            "the seed baseline", "--by", "tester")  # fmt: skip
    assert pinned.returncode == 0, pinned.stderr
    for i, factor in enumerate(factors):
        run = _nccl(tmp_path, f"h-{i}", factor, 5 + i)
        done = commbench_here("history", "add", str(history), str(run), "--keep", str(keep))
        assert done.returncode == 0, done.stderr
    return history


def test_a_run_the_history_holds_is_refused_under_any_name(tmp_path: Path) -> None:
    history = _seeded(tmp_path, [1.0] * 3)
    held = tmp_path / "runs" / "h-1"
    copy = shutil.copytree(held, tmp_path / "elsewhere" / "renamed")
    again = commbench_here("history", "add", str(history), str(copy))
    assert again.returncode == 2 and "is already in" in again.stderr, again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    inside = commbench_here("gate", str(history), str(copy))  # judged against itself
    assert inside.returncode == 2 and "is also a baseline run" in inside.stderr
    twice = commbench_here("gate", str(held), str(copy))
    assert twice.returncode == 2 and "is also a baseline run" in twice.stderr
    reruns = commbench_here("gate", str(history / "pinned"), str(held), str(copy),
                            "--current-runs", "2")  # fmt: skip
    assert reruns.returncode == 2  # one run counted as two reruns


def test_a_weekly_history_keeps_its_runs_by_count(tmp_path: Path) -> None:
    """Runs a week apart: the window keeps the newest by count, never empties by age
    (unless --max-age-days asks for it)."""
    history = tmp_path / "history"
    for week in range(8):
        run = _run(tmp_path, f"w{week}", 1)  # every run dated like its week below
        started = (TODAY - timedelta(days=7 * (8 - week))).isoformat()
        meta = (run / "meta.json").read_text().replace(_day(1).isoformat(), started)
        (run / "meta.json").write_text(meta)
        done = commbench_here("history", "add", str(history), str(run), "--keep", "6")
        assert done.returncode == 0, done.stdout
    assert len(history_runs(history)) == 6  # by count, though most are over 30 days old
    aged = _run(tmp_path, "late", 30)
    commbench_here("history", "add", str(history), str(aged), "--max-age-days", "30")
    assert len(history_runs(history)) < 6  # by age too, where asked


def test_a_pin_says_who_why_and_when_and_keeps_the_one_before(tmp_path: Path) -> None:
    history = _seeded(tmp_path, [1.0] * 3)
    ledger = read_ledger(history)
    assert ledger.pin is not None and ledger.pin.by == "tester"
    assert ledger.pin.reason == "the seed baseline" and len(ledger.pin.runs) == 5
    assert len(pinned_runs(history)) == 5
    window = [run.path.name for run in history_runs(history)][-2:]
    done = commbench_here("history", "pin", str(history), *window, "--reason", "new driver")
    assert done.returncode == 0, done.stderr
    ledger = read_ledger(history)
    assert ledger.pin.reason == "new driver" and ledger.pin.names != window  # copies
    assert [p.reason for p in ledger.earlier_pins] == ["the seed baseline"]
    assert len(pinned_runs(history)) == 2
    kept = commbench_here("history", "pin", str(history), *window, "--reason", "x", "--if-unpinned")
    assert kept.returncode == 0 and "kept the pin" in kept.stdout
    assert read_ledger(history).pin.reason == "new driver"
    bare = commbench_here("history", "pin", str(history), *window, "--reason", " ")
    assert bare.returncode == 2 and "reason:" in bare.stderr
    listed = commbench_here("history", "list", str(history))
    assert "pinned:" in listed.stdout and "new driver" in listed.stdout
    gated = commbench_here("gate", str(history), str(_nccl(tmp_path, "now", 1.0, 40)))
    assert "pinned reference: 2 run(s) pinned by" in gated.stdout  # in every report


def test_a_creep_every_window_passes_is_caught_against_the_pin(tmp_path: Path) -> None:
    """The window crept to 1.08 a little at a time; today's 1.12 is 1.04 beyond it (within
    a 5% tolerance) but 1.12 beyond the pinned level, past the asked 1.10x."""
    history = _seeded(tmp_path, [1.08] * 6, keep=6)
    now = _nccl(tmp_path, "now", 1.12, 40)
    report = tmp_path / "g.json"
    args = ["--aggregate-tolerance", "0.05", "--json", str(report)]
    done = commbench_here("gate", str(history), str(now), *args)
    assert done.returncode == 1, done.stdout
    verdict = json.loads(report.read_text())
    by_test = {(a["test"], a["collective"]): a for a in verdict["aggregates"]}
    assert by_test[("overall", "all")]["status"] == "unchanged"
    pin = by_test[("pin", "all")]
    assert pin["status"] == "regression" and pin["geomean"] == pytest.approx(1.12, rel=0.01)
    assert pin["tolerance"] == pytest.approx(0.10) and pin["baselines"] == 5
    assert "aggregate regression: pin overall" in done.stdout.splitlines()[-1]
    # 1.08 beyond the pin is not beyond the asked 1.10x: the pin passes it, and the trend
    # test, which saw the level step up 8% since the pin, is what says so
    below = _nccl(tmp_path, "below", 1.08, 41)
    assert commbench_here("gate", str(history), str(below), *args).returncode == 1
    by_test = {
        (a["test"], a["collective"]): a for a in json.loads(report.read_text())["aggregates"]
    }
    assert by_test[("pin", "all")]["status"] == "unchanged"
    assert by_test[("trend", "all")]["status"] == "regression"


def test_a_step_the_window_absorbed_is_caught_by_the_trend(tmp_path: Path) -> None:
    """Ten runs at the pinned level, then three 5% slower that a 3-run window took in:
    today's run matches the window and is under the asked shift above the pin, but the
    level since the pin stepped up 5%, beyond the 3% aggregate tolerance."""
    history = _seeded(tmp_path, [1.0] * 10 + [1.05] * 3, keep=3)
    report = tmp_path / "g.json"
    done = commbench_here("gate", str(history), str(_nccl(tmp_path, "now", 1.05, 40)),
                          "--json", str(report))  # fmt: skip
    assert done.returncode == 1, done.stdout
    verdict = json.loads(report.read_text())
    trend = next(a for a in verdict["aggregates"] if a["test"] == "trend")
    assert trend["status"] == "regression" and trend["geomean"] == pytest.approx(1.05, rel=0.01)
    assert trend["since"].endswith("seed-0")
    (step,) = [s for s in verdict["steps"] if s["collective"] == "all"]
    assert step["before"].endswith("h-9") and step["after"].endswith("h-10")
    assert "step: overall: 1.05" in done.stdout
    listed = commbench_here("history", "list", str(history))
    assert "step since the pin: overall" in listed.stdout


def test_an_alarm_the_rerun_does_not_confirm_is_quarantined(tmp_path: Path) -> None:
    history = _seeded(tmp_path, [1.0] * 5)
    first, rerun = _nccl(tmp_path, "a", 1.2, 40), _nccl(tmp_path, "b", 0.85, 41)
    alarm = commbench_here("gate", str(history), str(first), "--record", str(history))
    assert alarm.returncode == 1 and len(history_runs(history)) == 10
    both = commbench_here("gate", str(history), str(first), str(rerun), "--current-runs", "2",
                          "--confirm", "--record", str(history))  # fmt: skip
    assert both.returncode == 0, both.stdout
    assert both.stdout.count("quarantined") >= 2 and len(history_runs(history)) == 10
    assert {e.state for e in read_ledger(history).runs if e.name.endswith(("-a", "-b"))} == {
        "quarantined"
    }
    listed = commbench_here("history", "list", str(history))
    assert listed.stdout.count("quarantined:") == 2
    gated = commbench_here("gate", str(history), str(_nccl(tmp_path, "c", 1.0, 42)))
    assert "2 quarantined run(s)" in gated.stdout  # said, never judged against
    lone = commbench_here("gate", str(history), str(first), "--confirm")
    assert lone.returncode == 2 and "confirm:" in lone.stderr


def test_an_alarm_is_confirmed_only_when_its_rerun_repeats_it(tmp_path: Path) -> None:
    """--confirm judges the reruns without the alarm's run: one far-off run would carry
    the mean of the two (a machine's slow stretch, not a regression)."""
    history = _seeded(tmp_path, [1.0] * 5)
    first, clean, slow = (_nccl(tmp_path, n, f, h) for n, f, h in (("a", 3.0, 40),
                          ("b", 1.0, 41), ("c", 1.2, 42)))  # fmt: skip
    together = commbench_here("gate", str(history), str(first), str(clean), "--current-runs", "2")
    assert together.returncode == 1, together.stdout  # the mean of the two still alarms
    args = ["--current-runs", "2", "--confirm"]
    unconfirmed = commbench_here("gate", str(history), str(first), str(clean), *args)
    assert unconfirmed.returncode == 0, unconfirmed.stdout
    assert "the alarm's run a is left out" in unconfirmed.stdout
    repeated = commbench_here("gate", str(history), str(first), str(slow), *args)
    assert repeated.returncode == 1, repeated.stdout


def test_a_blind_run_joins_only_while_the_history_is_young(tmp_path: Path) -> None:
    """One NCCL run has no spread: a run gated against it exits 4 and joins (more runs
    would see). Once a gate on the history passed, an exit 4 (here: an asked shift of
    1.001x no history of these runs sees) never joins, --allow-insufficient or not; and
    --allow-young allows exit 4 only while the history is young."""
    young = tmp_path / "young"
    commbench_here("history", "add", str(young), str(_nccl(tmp_path, "y0", 1.0, 0)))
    grown = commbench_here("gate", str(young), str(_nccl(tmp_path, "y1", 1.0, 1)),
                           "--record", str(young), "--allow-young")  # fmt: skip
    assert grown.returncode == 0 and len(history_runs(young)) == 2, grown.stdout
    assert "too young" in grown.stdout
    history = _seeded(tmp_path, [1.0] * 5)
    passed = commbench_here("gate", str(history), str(_nccl(tmp_path, "p", 1.0, 40)),
                            "--record", str(history))  # fmt: skip
    assert passed.returncode == 0 and read_ledger(history).can_see
    blind = _nccl(tmp_path, "blind", 1.0, 41)
    done = commbench_here("gate", str(history), str(blind), "--detect", "1.001x",
                          "--allow-insufficient", "--record", str(history))  # fmt: skip
    assert done.returncode == 0 and "not recorded" in done.stdout
    assert not any(r.path.name.endswith("blind") for r in history_runs(history))
    strict = commbench_here("gate", str(history), str(blind), "--detect", "1.001x",
                            "--allow-young")  # fmt: skip
    assert strict.returncode == 4, strict.stdout
