"""`commbench export`: each format valid against its tracker's published schema, one
entry per measured row, names stable across runs and unique, through the real CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
from support.cli import commbench_here
from support.paths import SCHEMA_1_RUNS
from support.runfixtures import key, samples_around, write_run
from support.trackerschemas import (
    BMF_MEASURE_MAX,
    BMF_NAME_MAX,
    BMF_SCHEMA,
    GITHUB_BENCHMARK_SCHEMA,
    GITHUB_RANGE,
    GITHUB_TIME_UNITS,
)

from commbench.rundir.reader import read_run

BASELINE = SCHEMA_1_RUNS / "run-1"  # a real run, schema 1


def _strict_json(text: str):
    """JSON as the trackers parse it: NaN or Infinity would be refused."""

    def refuse(constant: str):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _run(path: Path, **meta) -> Path:
    rows = [
        (key(variant=v, tokens=t, tp=tp), samples_around(100 + t, 12, seed=t))
        for v in ("list", "tensor")
        for t in (7, 64)
        for tp in (2, 4)
    ]
    rows += [(key(tokens=1024), "skipped"), (key(tokens=1024, variant="list"), "fail")]
    return write_run(path, rows, **meta)


def export(fmt: str, *runs: Path, out: Path | None = None):
    args = ["export", *map(str, runs), "--format", fmt]
    return commbench_here(*args, *(["--out", str(out)] if out else []))


def test_bencher_output_is_bmf_with_latency_in_ns_and_busbw(tmp_path: Path) -> None:
    run = _run(tmp_path / "a")
    done = export("bencher", run)
    assert done.returncode == 0, done.stderr
    report = _strict_json(done.stdout)
    jsonschema.validate(report, BMF_SCHEMA, cls=jsonschema.Draft7Validator)
    results = read_run(run).results
    measured = results[results["check"] == "pass"]
    assert len(report) == len(measured) == 8  # one benchmark per measured row
    assert all(len(name) <= BMF_NAME_MAX for name in report)
    assert all(len(m) <= BMF_MEASURE_MAX for bench in report.values() for m in bench)
    for _, row in measured.iterrows():
        name = next(n for n in report if n.startswith(f"all_gather/{row['variant']} ")
                    and f"T={row['tokens']} " in n and f"tp={row['tp']} " in n)  # fmt: skip
        latency = report[name]["latency"]
        assert latency["value"] == pytest.approx(row["time_us"] * 1e3)
        assert latency["lower_value"] == pytest.approx(row["ci_low_us"] * 1e3)
        assert latency["upper_value"] == pytest.approx(row["ci_high_us"] * 1e3)
        assert latency["lower_value"] <= latency["value"] <= latency["upper_value"]
        bandwidth = report[name]["bus-bandwidth-gbps"]
        assert bandwidth["value"] == pytest.approx(row["busbw_gbps"])
        assert bandwidth["lower_value"] <= bandwidth["value"] <= bandwidth["upper_value"]
    assert done.stderr.strip() == (
        "commbench: export: left out 2 row(s) not measured (1 fail, 1 skipped)"
    )


def test_github_output_is_custom_smaller_is_better(tmp_path: Path) -> None:
    run = _run(tmp_path / "a", versions={"commbench": "0.1.0", "torch": "2.13.0"})
    done = export("github", run)
    assert done.returncode == 0, done.stderr
    entries = _strict_json(done.stdout)
    jsonschema.validate(entries, GITHUB_BENCHMARK_SCHEMA, cls=jsonschema.Draft7Validator)
    assert len(entries) == 8
    for entry in entries:
        assert set(entry) <= {"name", "unit", "value", "range", "extra"}
        assert entry["unit"] in GITHUB_TIME_UNITS
        match = GITHUB_RANGE.fullmatch(entry["range"])
        assert match and math.isfinite(float(match["value"]))
        assert "torch: 2.13.0" in entry["extra"] and "config_hash: abc" in entry["extra"]
        assert "95% CI:" in entry["extra"] and "busbw:" in entry["extra"]


@pytest.mark.parametrize("fmt", ["bencher", "github"])
def test_names_are_stable_across_runs_and_unique(tmp_path: Path, fmt: str) -> None:
    names = []
    for side in ("a", "b"):
        done = export(fmt, _run(tmp_path / side, label=side))
        data = _strict_json(done.stdout)
        names.append(list(data) if fmt == "bencher" else [e["name"] for e in data])
    assert names[0] == names[1] and len(set(names[0])) == len(names[0]) == 8
    # Together, the two runs would give a tracker two figures under one name: refused.
    both = export(fmt, tmp_path / "a", tmp_path / "b")
    assert both.returncode == 2 and both.stdout == ""
    assert both.stderr.count("\n") == 1 and "commbench: error: runs:" in both.stderr
    assert "repeats 'all_gather/" in both.stderr


def test_out_file_and_a_real_schema_1_run(tmp_path: Path) -> None:
    out = tmp_path / "bmf.json"
    done = export("bencher", BASELINE, out=out)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    report = _strict_json(out.read_text())
    jsonschema.validate(report, BMF_SCHEMA, cls=jsonschema.Draft7Validator)
    assert len(report) == len(read_run(BASELINE).results) == 30
    assert "all_reduce/tensor bfloat16 T=1024 H=1024 tp=4 dp=1 gloo world=4" in report


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--format", "csv"], "format: must be one of bencher, github (got 'csv')"),
        (["--format", "github", "--out", "/nonexistent/dir/x.json"], "out: '/nonexistent/dir"),
    ],
)
def test_bad_export_input_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    done = commbench_here("export", str(BASELINE), *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"commbench: error: {expected}")


def test_no_interval_is_invented_for_a_row_with_few_samples(tmp_path: Path) -> None:
    """Under 6 samples a row has no confidence interval: the bounds are left out."""
    run = write_run(tmp_path / "few", [(key(), samples_around(80, 4))])
    assert math.isnan(read_run(run).results["ci_low_us"].iloc[0])
    bench = _strict_json(export("bencher", run).stdout)
    (measures,) = bench.values()
    assert all(set(metric) == {"value"} for metric in measures.values())
    (entry,) = _strict_json(export("github", run).stdout)
    assert "range" not in entry and "95% CI" not in entry["extra"]
