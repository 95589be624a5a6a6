"""The gate: statistics on synthetic samples, every status and exit code through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import commbench
from runfixtures import key, samples_around, write_run

from commbench.gate import classify, run_gate
from commbench.stats import geomean_interval, shift_test


def test_identical_distributions_are_not_significant() -> None:
    a = samples_around(100, 30, 0.05, seed=1)
    b = samples_around(100, 30, 0.05, seed=2)
    test = shift_test(a, b)
    assert test.method == "samples" and not test.significant
    assert classify(test.ratio, test.significant, 0.05, unstable=False) == "unchanged"


def test_a_known_shift_is_detected() -> None:
    a = samples_around(100, 30, 0.02, seed=1)
    b = samples_around(120, 30, 0.02, seed=2)
    test = shift_test(a, b)
    assert test.significant and test.p_value < 1e-6
    assert test.ratio == pytest.approx(1.2, rel=0.02)
    assert classify(test.ratio, test.significant, 0.05, unstable=False) == "regression"


def test_round_medians_are_the_units_when_there_are_enough() -> None:
    a, b = samples_around(100, 40, 0.02, 1), samples_around(130, 40, 0.02, 2)
    units_a, units_b = [99, 100, 101, 100.5, 102], [129, 131, 130, 128, 132]
    test = shift_test(a, b, units_a, units_b)
    assert test.method == "rounds" and test.significant
    # five rounds that overlap are not significant, however many samples there are
    test = shift_test(a, b, [100, 130, 101, 129, 100], [131, 99, 130, 128, 101])
    assert test.method == "rounds" and not test.significant


def test_too_few_samples_uses_the_confidence_interval_rule() -> None:
    far = shift_test([100, 101, 99, 100, 100], [200, 201, 199, 200, 200])
    assert far.method == "ci99"
    few = shift_test([100, 101, 99], [200, 201, 199])  # too few for any 99% interval
    assert few.method == "ci99" and not few.significant


def test_slower_within_tolerance_passes() -> None:
    a, b = samples_around(100, 50, 0.005, 1), samples_around(103, 50, 0.005, 2)
    test = shift_test(a, b)
    assert test.significant  # real, but only 3%
    assert classify(test.ratio, test.significant, 0.05, unstable=False) == "unchanged"


def test_geomean_interval_brackets_a_common_shift() -> None:
    ratios = 1.1 * np.exp(np.random.default_rng(0).normal(0, 0.02, 30))
    center, low, high = geomean_interval(ratios)
    assert low < 1.1 < high and low > 1.05 and center == pytest.approx(1.1, rel=0.02)


# Fixture directories with one row per status.
STEADY = samples_around(100, 12, 0.01, 3)


def _pair(tmp_path: Path, **current_meta) -> tuple[Path, Path]:
    base = write_run(
        tmp_path / "base",
        [
            (key(tokens=1), STEADY),  # -> regression
            (key(tokens=2), STEADY),  # -> improvement
            (key(tokens=3), STEADY),  # -> unchanged
            (key(tokens=4), samples_around(100, 5, 0.01, 4)),  # -> noise (too few)
            (key(tokens=5), samples_around(100, 12, 0.3, 5)),  # -> unstable
            (key(tokens=6), STEADY),  # -> missing
            (key(tokens=8), STEADY),  # -> failed
            (key(tokens=9), STEADY),  # -> missing: skipped now (out of memory, --max-bytes)
        ],
    )
    current = write_run(
        tmp_path / "current",
        [
            (key(tokens=1), STEADY * 1.5),
            (key(tokens=2), STEADY * 0.5),
            (key(tokens=3), STEADY * 1.01),
            (key(tokens=4), samples_around(140, 3, 0.01, 6)),
            (key(tokens=5), samples_around(115, 12, 0.3, 7)),
            (key(tokens=7), STEADY),  # -> new
            (key(tokens=8), "fail"),
            (key(tokens=9), "skipped"),
        ],
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


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}


def _gate(*args: str) -> subprocess.CompletedProcess:
    return commbench("gate", *args, timeout=60)


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


def test_a_history_of_baselines(tmp_path: Path) -> None:
    history = tmp_path / "history"
    for i in range(3):
        write_run(history / f"run-{i}", [(key(), samples_around(100 + i, 12, 0.01, i))])
    current = write_run(tmp_path / "now", [(key(), samples_around(101, 12, 0.01, 9))])
    slow = write_run(tmp_path / "slow", [(key(), samples_around(150, 12, 0.01, 9))])
    assert _gate(str(history), str(current)).returncode == 0
    assert _gate(str(history / "run-0"), str(history / "run-1"), str(slow)).returncode == 1


def test_rules_file_sets_per_row_tolerance(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", [(key(tokens=1), STEADY), (key(tokens=4096), STEADY)])
    current = write_run(
        tmp_path / "b", [(key(tokens=1), STEADY * 1.3), (key(tokens=4096), STEADY * 1.01)]
    )
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[[rules]]\ntolerance = 0.5\nmatch = { bytes = '<65536' }\n"
        "[[rules]]\ntolerance = 0.4\nmatch = { collective = 'all_*', tokens = 1 }\n"
    )
    assert _gate(str(base), str(current), "--tolerance", "0.05").returncode == 1
    done = _gate(
        str(base),
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
    assert done.returncode == 0
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
