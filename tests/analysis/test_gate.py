"""The gate: statistics on synthetic samples, every status and exit code through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from support.cli import commbench_here
from support.runfixtures import key, samples_around, write_run

from commbench.analysis.gate import gate_runs, judge_aggregates, run_gate
from commbench.analysis.medians import run_medians
from commbench.rundir.reader import read_run

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor

# Fixture directories with one row per status.
STEADY = samples_around(100, 12, 0.01, 3)


def _pair(tmp_path: Path, **current_meta) -> tuple[Path, Path]:
    base = write_run(
        tmp_path / "base",
        [
            (key(tokens=1), STEADY),  # -> regression: beyond what runs drift by (gloo prior)
            (key(tokens=2), STEADY),  # -> improvement
            (key(tokens=3), STEADY),  # -> unchanged
            (key(tokens=4), samples_around(100, 5, 0.01, 4)),  # -> noise: within the drift
            (key(tokens=5), samples_around(100, 12, 0.3, 5)),  # -> unstable
            (key(tokens=6), STEADY),  # -> missing
            (key(tokens=8), STEADY),  # -> failed
            (key(tokens=9), STEADY),  # -> missing: skipped now (out of memory, --max-bytes)
        ],
        rounds=5,  # as configs/ci.toml: the 4-rank gloo prior was measured with 5 rounds
    )
    current = write_run(
        tmp_path / "current",
        [
            (key(tokens=1), STEADY * 100),  # one gloo baseline run: only huge shifts show
            (key(tokens=2), STEADY * 0.01),
            (key(tokens=3), STEADY * 1.01),
            (key(tokens=4), samples_around(140, 3, 0.01, 6)),
            (key(tokens=5), samples_around(115, 12, 0.3, 7)),
            (key(tokens=7), STEADY),  # -> new
            (key(tokens=8), "fail"),
            (key(tokens=9), "skipped"),
        ],
        rounds=5,
        **current_meta,
    )
    return base, current


def test_every_status(tmp_path: Path) -> None:
    base, current = _pair(tmp_path)
    result = run_gate([base], current, tolerance=0.05, aggregate_tolerance=0.5)
    status = dict(zip(result.rows["tokens"], result.rows["status"], strict=True))
    assert status == {
        1: "regression",
        2: "improvement",
        3: "unchanged",
        4: "noise",
        5: "unstable",
        6: "missing",
        7: "new",
        8: "failed",
        9: "missing",
    }
    assert result.exit_code == 1


def test_cli_exit_codes_and_reports(tmp_path: Path) -> None:
    base, current = _pair(tmp_path)
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    files = {name: tmp_path / f"gate.{name}" for name in ("md", "xml", "json")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "commbench",
            "gate",
            str(base),
            str(current),
            "--tolerance",
            "0.05",
            "--markdown",
            str(files["md"]),
            "--junit",
            str(files["xml"]),
            "--json",
            str(files["json"]),
        ],
        capture_output=True,
        text=True,
        env={**_env(), "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert done.returncode == 1, done.stderr
    assert "REGRESSION" in done.stdout.splitlines()[-1]
    assert done.stdout.index("regression") < done.stdout.index("improvement")  # worst first
    assert "1 row(s) unchanged" in done.stdout

    markdown = files["md"].read_text()
    assert markdown.startswith("## commbench gate") and "| regression |" in markdown
    assert summary.read_text() == "earlier step\n" + markdown

    suite = ET.parse(files["xml"]).getroot()
    assert suite.tag == "testsuite"
    cases = suite.findall("testcase")
    failed = {c.get("name").split(" ")[2] for c in cases if c.find("failure") is not None}
    assert failed == {"T=1", "T=6", "T=8", "T=9"}  # regression, missing (not allowed), failed
    assert int(suite.get("failures")) == 4 and int(suite.get("tests")) == len(cases)

    data = json.loads(files["json"].read_text())
    assert data["exit_code"] == 1 and data["counts"]["regression"] == 1
    assert len(data["rows"]) == 9

    # every verdict says what it could have seen: the minimum detectable shift
    (aggregate,) = data["aggregates"]
    assert aggregate["spread"] == "gloo prior (4 ranks, 5 rounds)" and aggregate["baselines"] == 1
    assert aggregate["detectable"] > 1.5  # one gloo baseline run: only large shifts show
    regressed = next(r for r in data["rows"] if r["status"] == "regression")
    assert regressed["low"] > 1 and regressed["detectable"] > 1
    assert f"detectable {aggregate['detectable']:.2f}x" in done.stdout
    assert "minimum detectable shift" in done.stdout and "minimum detectable shift" in markdown
    assert f"{aggregate['detectable']:.2f}x" in markdown
    (geomean,) = [c for c in cases if c.get("classname") == "aggregate"]
    detectable = geomean.find("properties/property[@name='detectable']").get("value")
    assert float(detectable) == pytest.approx(aggregate["detectable"])


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}


def _gate(*args: str) -> subprocess.CompletedProcess:
    """`commbench gate ARGS` in this process (test_cli_exit_codes_and_reports starts one)."""
    return commbench_here("gate", *args)


def test_exit_0_on_a_clean_pass(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", [(key(tokens=t), STEADY) for t in (1, 2, 3)])
    current = write_run(tmp_path / "b", [(key(tokens=t), STEADY * 1.01) for t in (1, 2, 3)])
    done = _gate(str(base), str(current))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("PASS")


def test_exit_3_when_rows_are_missing_unless_allowed(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", [(key(tokens=t), STEADY) for t in (1, 2)])
    current = write_run(tmp_path / "b", [(key(tokens=1), STEADY)])
    assert _gate(str(base), str(current)).returncode == 3
    assert _gate(str(base), str(current), "--allow-missing").returncode == 0


def test_exit_3_when_identity_differs_unless_allowed(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", [(key(), STEADY)])
    current = write_run(tmp_path / "b", [(key(), STEADY)], config_hash="other", world_size=8)
    done = _gate(str(base), str(current))
    assert done.returncode == 3
    assert "config_hash" in done.stdout and "world_size" in done.stdout
    allowed = _gate(str(base), str(current), "--allow-mismatch")
    assert allowed.returncode == 0 and "warning: config_hash differs" in allowed.stdout


def _nccl_history(tmp_path: Path, rows: list[dict], runs: int = 3) -> Path:
    """NCCL runs (no prior: the spread can only come from them), drifting 1% apart."""
    history = tmp_path / "history"
    for i in range(runs):
        write_run(
            history / f"run-{i}",
            [(k, samples_around(100 * (1 + 0.01 * i), 12, 0.01, i)) for k in rows],
            backend="nccl",
        )
    return history


def test_a_history_of_baselines(tmp_path: Path) -> None:
    rows = [key(backend="nccl", tokens=t) for t in (1, 2)]
    history = _nccl_history(tmp_path, rows)
    now = write_run(tmp_path / "now", [(k, samples_around(101, 12, 0.01, 9)) for k in rows],
                    backend="nccl")  # fmt: skip
    slow = write_run(tmp_path / "slow", [(k, samples_around(125, 12, 0.01, 9)) for k in rows],
                     backend="nccl")  # fmt: skip
    done = _gate(str(history), str(now), "--json", str(tmp_path / "now.json"))
    assert done.returncode == 0, done.stdout
    aggregate = json.loads((tmp_path / "now.json").read_text())["aggregates"][0]
    assert aggregate["spread"] == "3 baseline runs" and aggregate["spread_df"] == 2
    assert aggregate["low"] < aggregate["geomean"] < aggregate["high"]
    assert 1.03 < aggregate["detectable"] < 1.25  # runs 1% apart: a 25% slowdown shows
    assert _gate(str(history), str(slow)).returncode == 1


def test_one_nccl_baseline_is_too_little_data(tmp_path: Path) -> None:
    """No measured prior for NCCL here: one baseline run gives no between-run spread, so
    nothing is judged, not even a 2x slowdown, and the gate does not pass (exit 3)."""
    rows = [key(backend="nccl", tokens=t) for t in (1, 2)]
    history = _nccl_history(tmp_path, rows)
    slow = write_run(tmp_path / "slow", [(k, STEADY * 2) for k in rows], backend="nccl")
    done = _gate(str(history / "run-0"), str(slow), "--json", str(tmp_path / "g.json"))
    assert done.returncode == 3, done.stdout
    assert "too little data" in done.stdout.splitlines()[-1]
    data = json.loads((tmp_path / "g.json").read_text())
    assert {r["status"] for r in data["rows"]} == {"insufficient"}
    assert data["aggregates"][0]["status"] == "insufficient"
    assert data["aggregates"][0]["detectable"] is None  # NaN: nothing could be seen


def _drifting_runs(tmp_path: Path, name: str, drifts: list[float], rows: list[float]) -> list:
    """Runs whose rows sit at `rows` (us), each run moved as a whole by its drift."""
    keys = [key(backend="nccl", tokens=t) for t in range(1, len(rows) + 1)]
    return [
        read_run(
            write_run(
                tmp_path / name / f"run-{i}",
                [(k, samples_around(r * drift, 12, 0.001, i)) for k, r in zip(keys, rows,
                                                                              strict=True)],
                backend="nccl",
            )
        )
        for i, drift in enumerate(drifts)
    ]  # fmt: skip


def test_judge_aggregates_takes_its_spread_from_whole_runs(tmp_path: Path) -> None:
    """Rows that differ wildly within a run do not widen the interval; runs that drift
    together do: the same 1.25x slowdown is a regression against a steady history and
    not against a drifting one."""
    rows = [10.0, 300.0, 4000.0, 55.0]
    steady = _drifting_runs(tmp_path, "steady", [1.0, 1.01, 0.99, 1.0, 1.005], rows)
    drifting = _drifting_runs(tmp_path, "drifting", [1.0, 1.15, 0.87, 1.1, 0.95], rows)
    slow = _drifting_runs(tmp_path, "slow", [1.25], rows)[0]
    for history, expected in ((steady, "regression"), (drifting, "unchanged")):
        result = gate_runs(history, slow, tolerance=0.05, aggregate_tolerance=0.05)
        aggregates = judge_aggregates(result.rows, run_medians(history), 0.05, prior=None)
        (aggregate,) = aggregates.itertuples()
        assert aggregate.geomean == pytest.approx(1.25, rel=0.01)
        assert aggregate.status == expected, aggregate
        assert aggregate.spread == "5 baseline runs" and aggregate.rows == 4
        assert aggregate.low < aggregate.geomean < aggregate.high
    # two rows with exactly equal ratios (once a zero-width interval): still an interval
    two = _drifting_runs(tmp_path, "two", [1.0], [10.0, 20.0])
    same = _drifting_runs(tmp_path, "same", [1.2], [10.0, 20.0])[0]
    (aggregate,) = gate_runs(two, same).aggregates.itertuples()  # NCCL: no prior
    assert aggregate.status == "insufficient" and np.isnan(aggregate.low)
    for run in (*two, same):
        run.meta.backend = "gloo"  # the gloo prior: an interval as wide as runs drift
    (aggregate,) = gate_runs(two, same).aggregates.itertuples()
    assert aggregate.low < 1 < 1.2 < aggregate.high and aggregate.status == "unchanged"
    # one round at 4 ranks: the largest one-round figures measured (2 ranks)
    assert aggregate.detectable > 1.2 and aggregate.spread == "gloo prior (largest measured)"


def test_rules_file_sets_per_row_tolerance(tmp_path: Path) -> None:
    small, large = key(backend="nccl", tokens=1), key(backend="nccl", tokens=4096)
    history = _nccl_history(tmp_path, [small, large])
    current = write_run(
        tmp_path / "b", [(small, STEADY * 1.3), (large, STEADY * 1.01)], backend="nccl"
    )
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[[rules]]\ntolerance = 0.5\nmatch = { bytes = '<65536' }\n"
        "[[rules]]\ntolerance = 0.4\nmatch = { collective = 'all_*', tokens = 1 }\n"
    )
    assert _gate(str(history), str(current), "--tolerance", "0.05").returncode == 1
    done = _gate(
        str(history),
        str(current),
        "--tolerance",
        "0.05",
        "--aggregate-tolerance",
        "0.5",
        "--rules",
        str(rules),
        "--json",
        str(tmp_path / "g.json"),
    )
    assert done.returncode == 0, done.stdout
    rows = json.loads((tmp_path / "g.json").read_text())["rows"]
    assert {r["tokens"]: r["tolerance"] for r in rows} == {1: 0.5, 4096: 0.05}


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda d: [str(d / "nowhere"), str(d / "b")], "not a run directory"),
        (lambda d: [str(d / "b")], "need at least a BASELINE and a CURRENT"),
        (lambda d: [str(d / "a"), str(d / "b"), "--tolerance", "-1"], "tolerance: must be"),
        (lambda d: [str(d / "a"), str(d / "b"), "--rules", str(d / "bad.toml")], "rules"),
        (lambda d: [str(d / "a"), str(d / "broken")], "missing samples.csv"),
        (lambda d: [str(d / "a"), str(d / "garbled")], "garbled"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, make_args, expected: str) -> None:
    write_run(tmp_path / "a", [(key(), STEADY)])
    write_run(tmp_path / "b", [(key(), STEADY)])
    write_run(tmp_path / "broken", [(key(), STEADY)])
    (tmp_path / "broken" / "samples.csv").unlink()
    write_run(tmp_path / "garbled", [(key(), STEADY)])
    (tmp_path / "garbled" / "results.csv").write_text('collective\n"unterminated\n')
    (tmp_path / "bad.toml").write_text("[[rules]]\ntolerance = 0.1\nmatch = { colour = 'red' }\n")
    done = _gate(*make_args(tmp_path))
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1
