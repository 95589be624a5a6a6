"""The gate: every status and exit code on run directories, through the CLI too."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from support.cli import commbench_here
from support.runfixtures import key, samples_around, write_run

from commbench.analysis.gate.judge import run_gate
from commbench.rundir.schema import RESULTS_CSV

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor

# Fixture directories with one row per status.
STEADY = samples_around(100, 12, 0.01, 3)


def _pair(tmp_path: Path, **current_meta) -> tuple[Path, Path]:
    base = write_run(
        tmp_path / "base",
        [
            (key(tokens=1), STEADY),  # -> regression: far beyond what runs drift by
            (key(tokens=2), STEADY),  # -> improvement
            (key(tokens=3), STEADY),  # -> unchanged
            (key(tokens=4), samples_around(100, 5, 0.01, 4)),  # -> noise: within the drift
            (key(tokens=5), samples_around(100, 12, 0.3, 5)),  # -> unstable
            (key(tokens=6), STEADY),  # -> missing: not in the current run at all
            (key(tokens=8), STEADY),  # -> failed
            (key(tokens=9), STEADY),  # -> lost: skipped now (out of memory, --max-bytes)
            (key(tokens=10), "skipped"),  # -> skipped: never measured, nothing lost
        ],
        rounds=5,  # as configs/ci.toml: the 4-rank gloo prior was measured with 5 rounds
    )
    current = write_run(
        tmp_path / "current",
        [
            (key(tokens=1), STEADY * 1e4),  # one gloo baseline run: only huge shifts show
            (key(tokens=2), STEADY * 1e-4),
            (key(tokens=3), STEADY * 1.01),
            (key(tokens=4), samples_around(70, 3, 0.01, 6)),
            (key(tokens=5), samples_around(170, 12, 0.3, 7)),
            (key(tokens=7), STEADY),  # -> new
            (key(tokens=8), "fail"),
            (key(tokens=9), "skipped"),
            (key(tokens=10), "skipped"),
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
        9: "lost",
        10: "skipped",
    }
    assert result.exit_code == 1


def test_cli_exit_codes_and_reports(tmp_path: Path) -> None:
    base, current = _pair(tmp_path)
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    files = {name: tmp_path / f"gate.{name}" for name in ("md", "xml", "json")}
    done = subprocess.run(
        [sys.executable, "-m", "commbench", "gate", str(base), str(current),
         "--tolerance", "0.05", "--markdown", str(files["md"]), "--junit", str(files["xml"]),
         "--json", str(files["json"])],
        capture_output=True,
        text=True,
        env={**_env(), "GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "REGRESSION" in done.stdout.splitlines()[-1]
    assert done.stdout.index("regression") < done.stdout.index("improvement")  # worst first
    assert "1 row(s) unchanged" in done.stdout

    markdown = files["md"].read_text()
    assert markdown.startswith("## commbench gate") and "| regression |" in markdown
    assert summary.read_text() == "earlier step\n" + markdown

    suite = ET.parse(files["xml"]).getroot()
    cases = suite.findall("testcase")
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    rows_failed = {name.split(" ")[2] for name in failed if not name.startswith("geomean")}
    assert rows_failed == {"T=1", "T=6", "T=8", "T=9"}  # regression, missing, failed, lost
    assert "geomean overall" in failed  # one baseline run cannot see 2x: insufficient
    assert int(suite.get("failures")) == 5 and int(suite.get("tests")) == len(cases)

    data = json.loads(files["json"].read_text())
    assert data["exit_code"] == 1 and data["counts"]["regression"] == 1
    assert data["counts"]["lost"] == 1 and len(data["rows"]) == 10
    assert data["detect"] == 2.0  # gloo's default asked shift
    # every verdict says what it could have seen: the minimum detectable shift
    (overall,) = data["aggregates"]  # one collective/variant: the overall test alone
    assert overall["test"] == "overall" and overall["rows"] == 5
    assert overall["spread"] == "gloo prior (4 ranks, 5 rounds)" and overall["baselines"] == 1
    assert overall["status"] == "insufficient" and overall["detectable"] > 2.0
    assert f"{overall['detectable']:.2f}x" in done.stdout
    assert "minimum detectable shift" in done.stdout and "minimum detectable shift" in markdown
    (geomean,) = [c for c in cases if c.get("classname") == "aggregate"]
    detectable = geomean.find("properties/property[@name='detectable']").get("value")
    assert float(detectable) == pytest.approx(overall["detectable"])


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}


def _gate(*args: str) -> subprocess.CompletedProcess:
    """`commbench gate ARGS` in this process (test_cli_exit_codes_and_reports starts one)."""
    return commbench_here("gate", *args)


def _history(tmp_path: Path, rows: list[dict], runs: int = 5, name: str = "history") -> Path:
    """Runs drifting 1% apart, six hours apart, on one host; each row's median wobbling
    by a little on its own (samples with 1% noise)."""
    history = tmp_path / name
    for i in range(runs):
        write_run(
            history / f"run-{i}",
            [
                (k, samples_around(100 * (1 + 0.01 * (i % 3)), 12, 0.01, 10 * i + j))
                for j, k in enumerate(rows)
            ],
            backend=rows[0]["backend"],
            started=f"2026-01-0{1 + i // 4}T{(i % 4) * 6:02d}:00:00+00:00",
            hostnames=["node-a"],
        )
    return history


def _now(tmp_path: Path, rows: list[dict], factor: float, name: str, **meta) -> Path:
    return write_run(tmp_path / name, [(k, samples_around(100 * factor, 12, 0.01, 90 + j))
                                       for j, k in enumerate(rows)], backend=rows[0]["backend"],
                     hostnames=["node-a"], **meta)  # fmt: skip


NCCL = [key(backend="nccl", tokens=t) for t in (1, 2, 3)]


def test_exit_0_on_a_clean_pass_and_1_on_a_regression(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL)
    done = _gate(str(history), str(_now(tmp_path, NCCL, 1.01, "now")))
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("PASS")
    slow = _gate(str(history), str(_now(tmp_path, NCCL, 1.25, "slow")))
    assert slow.returncode == 1, slow.stdout
    assert "aggregate regression: overall" in slow.stdout.splitlines()[-1]


def test_exit_3_when_rows_are_missing_unless_allowed(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL)
    current = _now(tmp_path, NCCL[:2], 1.0, "now")
    assert _gate(str(history), str(current)).returncode == 3
    assert _gate(str(history), str(current), "--allow-missing").returncode == 0


def test_exit_3_names_what_differs_before_any_table(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL)
    current = _now(tmp_path, NCCL, 1.0, "now", config_hash="other", world_size=8)
    done = _gate(str(history), str(current), "--markdown", str(tmp_path / "g.md"))
    assert done.returncode == 3
    first = done.stdout.splitlines()[:2]
    assert first == [
        "not comparable: world_size differs: baseline 4, current 8",
        "not comparable: config_hash differs: baseline abc, current other",
    ]
    markdown = (tmp_path / "g.md").read_text()
    assert markdown.index("`config_hash`: baseline `abc`, current `other`") < markdown.index("|")
    allowed = _gate(str(history), str(current), "--allow-mismatch")
    assert allowed.returncode == 0 and "warning: config_hash differs" in allowed.stdout


def test_exit_1_when_a_row_measured_before_is_skipped_now_unless_allowed(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL)
    rows = [(k, samples_around(100, 12, 0.01, 9)) for k in NCCL[:2]] + [(NCCL[2], "skipped")]
    current = write_run(tmp_path / "now", rows, backend="nccl", hostnames=["node-a"])
    done = _gate(str(history), str(current))
    assert done.returncode == 1 and "1 lost" in done.stdout.splitlines()[-1], done.stdout
    assert _gate(str(history), str(current), "--allow-missing").returncode == 1  # not hidden
    assert _gate(str(history), str(current), "--allow-lost").returncode == 0


def test_exit_4_with_one_nccl_baseline_and_what_would_do(tmp_path: Path) -> None:
    """No prior for NCCL: one baseline run gives no between-run spread, so nothing is
    judged, not even a 2x slowdown; the gate does not pass (4, not 3: nothing differs)."""
    history = _history(tmp_path, NCCL)
    slow = _now(tmp_path, NCCL, 2.0, "slow")
    done = _gate(str(history / "run-0"), str(slow), "--json", str(tmp_path / "g.json"))
    assert done.returncode == 4, done.stdout
    assert "INSUFFICIENT" in done.stdout.splitlines()[-1]
    assert "add baseline runs, a history of at least 2" in done.stdout.splitlines()[-1]
    data = json.loads((tmp_path / "g.json").read_text())
    assert {r["status"] for r in data["rows"]} == {"insufficient"}
    assert data["aggregates"][0]["status"] == "insufficient"
    assert data["aggregates"][0]["detectable"] is None  # NaN: nothing could be seen
    allowed = _gate(str(history / "run-0"), str(slow), "--allow-insufficient")
    assert allowed.returncode == 0, allowed.stdout


OUR_NCCL_PRIOR = """
[[nccl.priors]]
world_size = {world}
rounds = 1
shared_sd = 0.004
row_sd = 0.002
group_sd = 0.005
runs = 40
machine = "8 x H100 SXM, NVLink"
measured = 2027-01-05
sweep = "commbench sweep --config configs/ci.toml"
command = "python benchmarks/gate_power.py fit RUNS"
"""


def test_a_priors_file_of_ones_own_lets_one_nccl_baseline_be_judged(tmp_path: Path) -> None:
    """`--priors FILE`: the spread measured on one's own machines stands in for the prior
    NCCL lacks, so one baseline run sees a 2x and passes a run that did not move."""
    history = _history(tmp_path, NCCL)
    world = json.loads((history / "run-0" / "meta.json").read_text())["world_size"]
    ours = tmp_path / "ours.toml"
    ours.write_text(OUR_NCCL_PRIOR.format(world=world))
    slow, same = _now(tmp_path, NCCL, 2.0, "slow"), _now(tmp_path, NCCL, 1.0, "same")
    report = tmp_path / "g.json"
    done = _gate(str(history / "run-0"), str(slow), "--priors", str(ours), "--json", str(report))
    assert done.returncode == 1, done.stdout
    overall = json.loads(report.read_text())["aggregates"][0]
    assert overall["spread"] == f"nccl prior ({world} ranks, ours.toml)"
    assert _gate(str(history / "run-0"), str(same), "--priors", str(ours)).returncode == 0
    ours.write_text(OUR_NCCL_PRIOR.format(world=world).replace("runs = 40", "runs = 1"))
    refused = _gate(str(history / "run-0"), str(same), "--priors", str(ours))
    assert refused.returncode == 2 and f"priors {ours}: nccl.priors.runs" in refused.stderr


def test_exit_4_names_how_many_baseline_runs_would_see_the_asked_shift(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL, runs=3)
    current = _now(tmp_path, NCCL, 1.0, "now")
    done = _gate(str(history), str(current), "--detect", "1.05x", "--json", str(tmp_path / "j"))
    assert done.returncode == 4, done.stdout
    (overall,) = json.loads((tmp_path / "j").read_text())["aggregates"]
    assert overall["detectable"] > 1.05 and overall["needed"] > 3
    more = int(overall["needed"]) - 3
    assert f"add {more} baseline run(s) (3 now)" in done.stdout.splitlines()[-1]
    assert _gate(str(history), str(current), "--detect", "1.5").returncode == 0
    rules = tmp_path / "rules.toml"
    rules.write_text("detect = 1.05\n")
    assert _gate(str(history), str(current), "--rules", str(rules)).returncode == 4
    # the flag wins over the rules file
    assert _gate(str(history), str(current), "--rules", str(rules), "--detect", "2").returncode == 0


def test_nothing_to_compare_is_not_a_pass(tmp_path: Path) -> None:
    """Every row new (none timed in the history): nothing was seen, so exit 4."""
    history = _history(tmp_path, NCCL[:1])
    current = _now(tmp_path, NCCL[1:], 1.0, "now")
    result = run_gate([history], current, allow_missing=True)
    assert set(result.rows["status"]) == {"new", "missing"}
    assert result.aggregates["status"].tolist() == ["insufficient"] and result.exit_code == 4


def test_a_row_that_failed_once_in_the_history_is_judged_on_its_passes(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL)
    results = pd.read_csv(history / "run-1" / RESULTS_CSV)
    results.loc[results["tokens"] == 3, "check"] = "fail"
    results.to_csv(history / "run-1" / RESULTS_CSV, index=False)
    result = run_gate([history], _now(tmp_path, NCCL, 1.0, "now"))
    row = result.rows.set_index("tokens").loc[3]
    assert row["status"] == "unchanged" and row["baselines"] == 4
    assert result.exit_code == 0


def test_a_change_of_k_is_reported(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL)
    current = _now(tmp_path, NCCL, 1.0, "now")
    results = pd.read_csv(current / RESULTS_CSV)
    results.loc[results["tokens"] == 2, "iters"] = 8
    results.to_csv(current / RESULTS_CSV, index=False)
    result = run_gate([history], current)
    (change,) = result.k_changes
    assert "T=2" in change and change.endswith("K 1 -> 8")
    done = _gate(str(history), str(current))
    assert "K (operations per sample) is new in 1 row(s)" in done.stdout


def test_a_narrow_history_is_said(tmp_path: Path) -> None:
    history = tmp_path / "batch"
    for i in range(3):
        write_run(history / f"run-{i}", [(k, samples_around(100, 12, 0.01, i)) for k in NCCL],
                  backend="nccl", started=f"2026-01-01T00:0{i}:00+00:00",
                  hostnames=["node-a"])  # fmt: skip
    current = _now(tmp_path, NCCL, 1.0, "now")
    current_b = write_run(tmp_path / "b", [(k, STEADY) for k in NCCL], backend="nccl",
                          hostnames=["node-b"])  # fmt: skip
    notes = run_gate([history], current_b).notes
    assert notes[0].startswith("the 3 baseline runs span 2 minutes")
    assert "hosts ['node-b'] are not in the history" in notes[1]
    assert run_gate([_history(tmp_path, NCCL)], current).notes == []  # days, same host


def test_current_runs_are_judged_together_on_each_rows_geometric_mean(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL)
    reruns = [_now(tmp_path, NCCL, factor, f"now-{factor}") for factor in (1.0, 1.21)]
    json_path, junit_path, markdown = (tmp_path / f"g.{x}" for x in ("json", "xml", "md"))
    reports = ["--json", str(json_path), "--junit", str(junit_path), "--markdown", str(markdown)]
    # a tolerance of almost nothing: every row moved, and the rows' table is drawn
    tight = ["--tolerance", "0.0001"]
    done = _gate(str(history), *map(str, reruns), "--current-runs", "2", *reports, *tight)
    data = json.loads(json_path.read_text())
    assert data["currents"] == list(map(str, reruns)) and len(data["baselines"]) == 5
    medians = [pd.read_csv(run / RESULTS_CSV).set_index("tokens")["time_us"] for run in reruns]
    for row in data["rows"]:
        both = [m[row["tokens"]] for m in medians]
        assert row["current_us"] == pytest.approx((both[0] * both[1]) ** 0.5)
        assert row["currents"] == 2 and row["baselines"] == 5
    (overall,) = data["aggregates"]
    assert overall["currents"] == 2 and done.returncode == data["exit_code"]
    assert "2 current runs together" in done.stdout  # the power note: they see more
    assert "| baseline | 2 current runs | ratio |" in markdown.read_text()
    suite = ET.parse(junit_path).getroot()
    assert suite.find("properties/property[@name='current_runs']").get("value") == "2"
    alone = _gate(str(history), str(reruns[1]), "--json", str(json_path))
    assert json.loads(json_path.read_text())["currents"] == [str(reruns[1])]
    assert "current runs" not in alone.stdout  # one current run: the words of before


def test_a_row_any_current_run_failed_skipped_or_lacks_is_not_judged(tmp_path: Path) -> None:
    """A row failed in one rerun is failed, skipped in one is lost, absent from one is
    missing: the other rerun's time does not stand in for it."""
    history = _history(tmp_path, NCCL)
    rows = [*NCCL, key(backend="nccl", tokens=4)]  # the 4th: timed now, never before
    steady = [(k, samples_around(100, 12, 0.01, j)) for j, k in enumerate(rows)]
    first = write_run(tmp_path / "first", steady, backend="nccl", hostnames=["node-a"])
    holes = [(NCCL[0], "fail"), (NCCL[1], "skipped"), steady[3]]  # NCCL[2]: not in it at all
    second = write_run(tmp_path / "second", holes, backend="nccl", hostnames=["node-a"])
    result = run_gate([history], [first, second])
    status = dict(zip(result.rows["tokens"], result.rows["status"], strict=True))
    assert status == {1: "failed", 2: "lost", 3: "missing", 4: "new"}
    assert result.exit_code == 1


def test_a_change_of_k_in_any_current_run_is_reported(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL)
    reruns = [_now(tmp_path, NCCL, 1.0, name) for name in ("first", "second")]
    results = pd.read_csv(reruns[1] / RESULTS_CSV)
    results.loc[results["tokens"] == 2, "iters"] = 8
    results.to_csv(reruns[1] / RESULTS_CSV, index=False)
    (change,) = run_gate([history], reruns).k_changes
    assert "T=2" in change and change.endswith("K 1 -> 8")


def test_current_runs_that_differ_from_each_other_are_not_comparable(tmp_path: Path) -> None:
    history = _history(tmp_path, NCCL)
    first = _now(tmp_path, NCCL, 1.0, "first")
    other = write_run(tmp_path / "other", [(k, STEADY) for k in NCCL], backend="nccl",
                      config_hash="other", hostnames=["node-b"])  # fmt: skip
    done = _gate(str(history), str(first), str(other), "--current-runs", "2")
    assert done.returncode == 3, done.stdout
    assert done.stdout.startswith(
        "not comparable: config_hash differs: baseline abc, current other"
    )
    assert "the 2 current runs' hosts ['node-b'] are not in the history" in done.stdout


def test_rules_file_sets_per_row_tolerance(tmp_path: Path) -> None:
    small, large = key(backend="nccl", tokens=1), key(backend="nccl", tokens=4096)
    history = _history(tmp_path, [small, large])
    current = write_run(
        tmp_path / "b", [(small, STEADY * 1.3), (large, STEADY * 1.01)], backend="nccl"
    )
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[[rules]]\ntolerance = 0.5\nmatch = { bytes = '<65536' }\n"
        "[[rules]]\ntolerance = 0.4\nmatch = { collective = 'all_*', tokens = 1 }\n"
    )
    assert _gate(str(history), str(current), "--tolerance", "0.05").returncode == 1
    done = _gate(str(history), str(current), "--tolerance", "0.05", "--aggregate-tolerance",
                 "0.5", "--detect", "1.6", "--rules", str(rules), "--json",
                 str(tmp_path / "g.json"))  # fmt: skip
    assert done.returncode == 0, done.stdout
    rows = json.loads((tmp_path / "g.json").read_text())["rows"]
    assert {r["tokens"]: r["tolerance"] for r in rows} == {1: 0.5, 4096: 0.05}
    # a rule no row matches would change nothing (a typo, most often): refused
    (tmp_path / "typo.toml").write_text(
        "[[rules]]\ntolerance = 0.5\nmatch = { collective = 'all-gather' }\n"
    )
    typo = _gate(str(history), str(current), "--rules", str(tmp_path / "typo.toml"))
    assert typo.returncode == 2
    assert typo.stderr.strip() == (
        "commbench: error: rules: rule 1 (match {'collective': 'all-gather'}) matches no row"
        " of these runs: it would change nothing; fix its patterns or remove it"
    )


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda d: [str(d / "nowhere"), str(d / "b")], "not a run directory"),
        (lambda d: [str(d / "b")], "need at least a BASELINE and a CURRENT"),
        (lambda d: [str(d / "a"), str(d / "b"), "--tolerance", "-1"], "tolerance: must be"),
        (lambda d: [str(d / "a"), str(d / "b"), "--rules", str(d / "bad.toml")], "rules"),
        (lambda d: [str(d / "a"), str(d / "b"), "--rules", str(d / "low.toml")], "detect"),
        (lambda d: [str(d / "a"), str(d / "b"), "--detect", "0.9x"], "detect: must be a ratio"),
        (lambda d: [str(d / "a"), str(d / "b"), "--detect", "fast"], "(got 'fast')"),
        (lambda d: [str(d / "a"), str(d / "broken")], "missing samples.csv"),
        (lambda d: [str(d / "a"), str(d / "garbled")], "garbled"),
        (
            lambda d: [str(d / "a"), str(d / "b"), "--current-runs", "0"],
            "current-runs: must be 1 or more (got 0)",
        ),
        (
            lambda d: [str(d / "a"), str(d / "b"), "--current-runs", "2"],
            "current-runs: must leave a BASELINE among the 2 runs (got 2)",
        ),
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
    (tmp_path / "low.toml").write_text("detect = 0.5\n")
    done = _gate(*make_args(tmp_path))
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1


def _nccl_runs(tmp_path: Path, name: str, times: list[dict[int, object]], **meta) -> list[Path]:
    """Runs of the NCCL rows, each a dict tokens -> median (or "skipped"/"fail"), days
    apart, one host."""
    paths = []
    for i, medians in enumerate(times):
        rows = [(k, medians[k["tokens"]] if isinstance(medians[k["tokens"]], str)
                 else samples_around(medians[k["tokens"]], 12, 0.002, 100 * i + j))
                for j, k in enumerate(NCCL)]  # fmt: skip
        paths.append(write_run(tmp_path / name / f"run-{i}", rows, backend="nccl",
                               started=f"2026-01-{i + 1:02d}T00:00:00+00:00",
                               hostnames=["node-a"], **meta))  # fmt: skip
    return paths


def _drifting(i: int, rows: tuple[int, ...] = (1, 2, 3)) -> dict[int, float]:
    """Run i of a history: every row 100 us moved by the run's own drift (1%)."""
    return {t: 100 * (1 + 0.01 * ((i * 5) % 3 - 1)) for t in rows}


def test_a_row_the_first_rerun_skipped_stays_lost(tmp_path: Path) -> None:
    """Reruns judged together: a row any of them skipped is `lost` (exit 1), not judged on
    the rerun that timed it."""
    history = _nccl_runs(tmp_path, "history", [_drifting(i) for i in range(5)])
    first = {1: 100.0, 2: "skipped", 3: 100.0}
    currents = _nccl_runs(tmp_path, "now", [first, _drifting(7)], label="now")
    result = run_gate(history, currents)
    status = dict(zip(result.rows["tokens"], result.rows["status"], strict=True))
    assert status[2] == "lost" and result.exit_code == 1


def test_a_row_with_fewer_baseline_runs_gets_its_own_interval(tmp_path: Path) -> None:
    """Row 2 failed its check in two of five baseline runs: it is judged on the three
    where it passed, its interval wider than its neighbours' by sqrt(1 + 1/3) over
    sqrt(1 + 1/5) (the same pooled spread)."""
    times = [_drifting(i) for i in range(5)]
    times[0][2] = times[1][2] = "fail"
    history = _nccl_runs(tmp_path, "history", times)
    (current,) = _nccl_runs(tmp_path, "now", [{1: 100.0, 2: 100.0, 3: 100.0}], label="now")
    rows = run_gate(history, current).rows.set_index("tokens")
    assert rows.loc[2, "baselines"] == 3 and rows.loc[1, "baselines"] == 5

    def half(t: int) -> float:
        return math.log(rows.loc[t, "high"] / rows.loc[t, "low"]) / 2

    assert half(2) / half(1) == pytest.approx(math.sqrt(1 + 1 / 3) / math.sqrt(1 + 1 / 5))


def test_a_history_that_contradicts_the_prior_is_judged_without_it(tmp_path: Path) -> None:
    """gloo, 4 ranks, 5 rounds: the shipped prior. A history drifting by 40% (the prior's
    run drift is 10.5%) drops it; one drifting by 1% is pooled with it."""

    def history(name: str, drift: float) -> list[Path]:
        return [write_run(tmp_path / name / f"run-{i}",
                          [(k, samples_around(100 * math.exp(drift * ((i * 7) % 5 - 2)), 12,
                                              0.002, i))
                           for k in (key(tokens=t) for t in (1, 2, 3))],
                          rounds=5, started=f"2026-01-{i + 1:02d}T00:00:00+00:00",
                          label=f"{name}-{i}")
                for i in range(5)]  # fmt: skip

    now = write_run(tmp_path / "now", [(key(tokens=t), STEADY) for t in (1, 2, 3)], rounds=5)
    wide = run_gate(history("wide", 0.4), now).aggregates.iloc[0]
    assert wide["spread"] == "5 baseline runs"  # the prior dropped
    narrow = run_gate(history("narrow", 0.01), now).aggregates.iloc[0]
    assert narrow["spread"] == "gloo prior (4 ranks, 5 rounds) + 5 baseline runs"


def test_a_row_faster_than_its_runs_drift_is_not_a_regression(tmp_path: Path) -> None:
    """Every row 1.5x slower but row 1, 1.2x: the run regressed as a whole (the overall
    test); row 1 moved 0.8x against it, which is not a slowdown of its own."""
    history = _nccl_runs(tmp_path, "history", [_drifting(i) for i in range(5)])
    (current,) = _nccl_runs(tmp_path, "now", [{1: 120.0, 2: 150.0, 3: 150.0}], label="now")
    result = run_gate(history, current)
    rows = result.rows.set_index("tokens")
    assert rows.loc[1, "ratio"] == pytest.approx(1.2, rel=0.01) and rows.loc[1, "contrast"] < 1
    assert rows.loc[1, "status"] != "regression"
    assert result.aggregates.iloc[0]["status"] == "regression" and result.exit_code == 1


@pytest.mark.parametrize("unstable_side", ["baseline", "current"])
def test_a_row_unstable_on_one_side_only_is_unstable(tmp_path: Path, unstable_side: str) -> None:
    """Row 1 beyond its tolerance against the run but within its interval, its samples
    scattering (cv >= 0.10) in the baseline or in the current run only: `unstable`."""

    def samples(median: float, unstable: bool, seed: int):
        return samples_around(median, 12, 0.3 if unstable else 0.002, seed)

    base = write_run(tmp_path / "base", [(key(tokens=t), samples(100, unstable_side ==
                                                                 "baseline" and t == 1, t))
                                         for t in (1, 2, 3)], rounds=5)  # fmt: skip
    now = write_run(tmp_path / "now", [(key(tokens=t), samples(130 if t == 1 else 100,
                                                               unstable_side == "current"
                                                               and t == 1, 10 + t))
                                       for t in (1, 2, 3)], rounds=5)  # fmt: skip
    rows = run_gate([base], now, tolerance=0.05).rows.set_index("tokens")
    assert rows.loc[1, "status"] == "unstable", rows.loc[1].to_dict()
    assert rows.loc[2, "status"] in ("unchanged", "noise")


def test_a_favourable_drift_does_not_mask_a_row_or_collective_regression(tmp_path: Path) -> None:
    """reduce_scatter ran 0.8x and all_gather 1.04x: within a 5% tolerance of its own
    baseline, but 1.14x against the run (the mean of both), which is what the collective
    and row tests judge and what the tolerance applies to. A regression, not masked by
    the drift."""
    rows = [key(backend="nccl", collective=c, tokens=t)
            for c in ("all_gather", "reduce_scatter") for t in (1, 2, 3)]  # fmt: skip
    history = []
    for i in range(5):
        drift = 1 + 0.01 * ((i * 5) % 3 - 1)
        history.append(write_run(tmp_path / "history" / f"run-{i}",
                                 [(k, samples_around(100 * drift, 12, 0.002, 10 * i + j))
                                  for j, k in enumerate(rows)], backend="nccl",
                                 started=f"2026-01-0{i + 1}T00:00:00+00:00"))  # fmt: skip
    level = {"all_gather": 104.0, "reduce_scatter": 80.0}
    now = write_run(tmp_path / "now", [(k, samples_around(level[k["collective"]], 12, 0.002, j))
                                       for j, k in enumerate(rows)], backend="nccl")  # fmt: skip
    result = run_gate(history, now, tolerance=0.05, aggregate_tolerance=0.05)
    row = result.rows.set_index(["collective", "tokens"]).loc[("all_gather", 1)]
    assert row["ratio"] < 1.05 < row["contrast"] and row["status"] == "regression"
    aggregates = result.aggregates.set_index(["test", "collective"])
    gather = aggregates.loc[("collective", "all_gather")]
    assert gather["geomean"] < 1.05 < gather["contrast"]
    assert gather["status"] == "regression" and result.exit_code == 1


def test_runs_of_other_settings_are_refused_naming_the_settings(tmp_path: Path) -> None:
    """Not `config_hash differs`: the settings behind it, with both values."""
    rows = [(key(tokens=t), samples_around(100, 8)) for t in (1, 8)]
    base = write_run(tmp_path / "a", rows, config={"rounds": 1, "tokens": [1, 8]})
    other = write_run(tmp_path / "b", rows, config={"rounds": 1, "tokens": [1, 8, 128]},
                      config_hash="def")  # fmt: skip
    done = _gate(str(base), str(other))
    assert done.returncode == 3
    assert "tokens differs: baseline [1, 8], current [1, 8, 128]" in done.stdout
    assert "config_hash" not in done.stdout
