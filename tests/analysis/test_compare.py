"""compare on fixture directories whose answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from support.cli import commbench, commbench_here
from support.runfixtures import key, samples_around, write_run

from commbench.analysis.compare import compare_runs, size_bucket
from commbench.rundir.reader import read_run

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor

ROWS = [key(tokens=t, variant=v) for t in (8, 1024) for v in ("list", "tensor")]  # 16 KiB, 2 MiB


def _runs(tmp_path: Path) -> list[Path]:
    steady = samples_around(100, 12, 0.01, 1)
    ref = write_run(tmp_path / "ref", [(k, steady) for k in ROWS], label="nccl-2.21")
    same = write_run(tmp_path / "same", [(k, steady * 1.002) for k in ROWS], label="nccl-2.21b")
    slow = write_run(
        tmp_path / "slow",
        [(k, steady * (50.0 if k["tokens"] == 8 else 1.0)) for k in ROWS],
        label="nccl-2.23",
        versions={"commbench": "0.1.0", "torch": "2.13.0", "cuda": "12.8", "nccl_built": "2.21.5",
                  "nccl_runtime": "2.23.4"},
        env={"NCCL_ALGO": "Ring"},
    )  # fmt: skip
    return [ref, same, slow]


def test_ratios_significance_and_geomeans(tmp_path: Path) -> None:
    runs = [read_run(p) for p in _runs(tmp_path)]
    comparison = compare_runs(runs, [r.label for r in runs])
    rows = comparison.rows
    assert comparison.labels == ["nccl-2.21", "nccl-2.21b", "nccl-2.23"]
    assert list(rows["tokens"]) == [8, 8, 1024, 1024]
    assert rows["nccl-2.23 ratio"].round(3).tolist() == [50.0, 50.0, 1.0, 1.0]
    # beyond what one gloo run drifts from another on this machine (the prior): only 50x
    assert rows["nccl-2.23 significant"].tolist() == [True, True, False, False]
    assert not rows["nccl-2.21b significant"].any()
    assert (rows["nccl-2.23 low"] <= rows["nccl-2.23 ratio"]).all()
    assert (rows["nccl-2.23 ratio"] <= rows["nccl-2.23 high"]).all()
    aggregates = comparison.aggregates.set_index(["label", "group"])
    small = aggregates.loc[("nccl-2.23", "size small (< 1 MiB)")]
    assert small["ratio"] == pytest.approx(50.0) and small["rows"] == 2
    # two rows with equal ratios: an interval from the between-run spread, never zero width
    assert small["low"] < 50.0 < small["high"] and small["low"] > 1
    assert aggregates.loc[("nccl-2.23", "size large (>= 1 MiB)"), "ratio"] == pytest.approx(1.0)
    assert aggregates.loc[("nccl-2.23", "overall"), "ratio"] == pytest.approx(50.0**0.5)
    # 4 ranks were measured with 5 rounds: a run of one round takes the largest one-round prior
    assert comparison.spread == "gloo prior (largest measured)"
    assert aggregates.loc[("nccl-2.21b", "overall"), "ratio"] == pytest.approx(1.002)
    assert set(comparison.differs) == {"cuda", "nccl_built", "nccl_runtime", "env NCCL_ALGO"}
    assert comparison.differs["nccl_runtime"] == [None, None, "2.23.4"]
    assert comparison.same["torch"] == "2.13.0"


def test_size_buckets() -> None:
    assert size_bucket(1024) == "small (< 1 MiB)"
    assert size_bucket(1 << 20) == "large (>= 1 MiB)"


def test_cli_writes_markdown_and_csv(tmp_path: Path) -> None:
    paths = [str(p) for p in _runs(tmp_path)]
    md, csv = tmp_path / "c.md", tmp_path / "c.csv"
    done = commbench(
        "compare", *paths, "--labels", "a,b,c", "--markdown", str(md), "--csv", str(csv)
    )
    assert done.returncode == 0, done.stderr
    assert "Reference: a" in done.stdout and "differs nccl_runtime" in done.stdout
    table = pd.read_csv(csv)
    assert {"a us", "b us", "c us", "c ratio", "c significant", "bucket"} <= set(table.columns)
    text = md.read_text()
    assert text.startswith("## commbench compare") and "| nccl_runtime |" in text
    assert (
        "50.000" in text
        and " *" in text
        and "between-run spread (gloo prior (largest measured)" in text
    )


def test_without_a_measured_spread_there_are_no_intervals(tmp_path: Path) -> None:
    """NCCL has no prior measured here, and one run a side shows no spread: no interval
    and no significance mark rather than one made up from within-run samples."""
    rows = [key(backend="nccl", tokens=t) for t in (8, 1024)]
    steady = samples_around(100, 12, 0.01, 1)
    runs = [
        read_run(write_run(tmp_path / name, [(k, steady * f) for k in rows], backend="nccl"))
        for name, f in (("a", 1.0), ("b", 3.0))
    ]
    comparison = compare_runs(runs, ["a", "b"])
    assert comparison.rows["b ratio"].round(3).tolist() == [3.0, 3.0]
    assert comparison.rows["b low"].isna().all() and not comparison.rows["b significant"].any()
    assert comparison.aggregates["low"].isna().all() and comparison.spread == ""
    assert comparison.spread_note.startswith("no intervals")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--labels", "a,b"], "labels: 2 given for 3 runs"),
        (["--labels", "a,a,b"], "labels: must be distinct"),
    ],
)
def test_bad_labels_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    done = commbench_here("compare", *map(str, _runs(tmp_path)), *args)
    assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr


def test_one_run_is_not_a_comparison(tmp_path: Path) -> None:
    done = commbench_here("compare", str(_runs(tmp_path)[0]))
    assert done.returncode == 2 and "need at least two" in done.stderr


def test_differing_settings_are_named_before_any_table(tmp_path: Path) -> None:
    """Runs of different configs: each setting that differs, with each run's value, comes
    first, and piped output keeps every column whole (no 80-column cut, no ellipsis)."""
    steady = samples_around(100, 12, 0.01, 1)
    configs = [
        {"rounds": 1, "tokens": [8, 1024], "timing": {"target_ci": 0.05}, "out": "x"},
        {"rounds": 1, "tokens": [8, 1024, 4096], "timing": {"target_ci": 0.02}, "out": "y"},
    ]
    paths = [
        write_run(tmp_path / name, [(k, steady) for k in ROWS], label=name, config_hash=name)
        for name in ("first", "second")
    ]
    for path, config in zip(paths, configs, strict=True):  # what a sweep records
        meta = json.loads((path / "meta.json").read_text())
        (path / "meta.json").write_text(json.dumps({**meta, "config": config}))
    done = commbench("compare", *map(str, paths))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [
        "differs timing.target_ci: first 0.05, second 0.02",
        "differs tokens: first [8, 1024], second [8, 1024, 4096]",
    ]  # the run directory (`out`) does not shape the numbers: not a difference
    assert "config_hash" not in done.stdout and "…" not in done.stdout
    assert any("all_gather/tensor bfloat16 T=1024 H=1024 tp=2 dp=2" in line for line in lines)
    assert any(" us (0.50)" in line for line in lines)  # one time rule: us below 1 ms


def test_json_on_standard_output(tmp_path: Path) -> None:
    done = commbench_here("compare", *map(str, _runs(tmp_path)), "--labels", "a,b,c", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["labels"] == ["a", "b", "c"]
    assert data["differs"]["nccl_runtime"] == [None, None, "2.23.4"]
    assert [round(row["c ratio"], 3) for row in data["rows"]] == [50.0, 50.0, 1.0, 1.0]
    assert {a["group"] for a in data["aggregates"]} >= {"overall", "size small (< 1 MiB)"}


def test_every_command_prints_times_by_one_rule(tmp_path: Path) -> None:
    """1576.8 us is 1.58 ms in report, compare and gate alike (one row of b is 20x slower:
    the gate shows it)."""
    rows = [key(variant=v, tokens=t) for t in (8, 64) for v in ("list", "tensor")]
    steady = samples_around(1576.8, 12, 0.0001, 1)
    factors = {"a": [1.0] * 4, "b": [20.0, 1.0, 1.0, 1.0]}
    paths = [str(write_run(tmp_path / n, [(k, steady * f) for k, f in zip(rows, fs, strict=True)]))
             for n, fs in factors.items()]  # fmt: skip
    for args, code in (["report", paths[0]], 0), (["compare", *paths], 0), (["gate", *paths], 1):
        done = commbench_here(*args)
        assert done.returncode == code, done.stderr
        assert "1.58 ms" in done.stdout and "1576" not in done.stdout, args
        assert "31536" not in done.stdout
        assert "…" not in done.stdout  # piped: every table as wide as its cells
