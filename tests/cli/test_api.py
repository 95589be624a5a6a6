"""`commbench.load_run` / `load_runs`: the one reader of run directories, any schema."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from support.paths import REPO, SCHEMA_1_RUNS
from support.runfixtures import key, samples_around, write_run

import commbench
from commbench.config.settings import SweepConfig
from commbench.errors import UsageError
from commbench.rundir.schema import RESULT_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION

BASELINES = SCHEMA_1_RUNS


def test_a_schema_1_run_reads_in_the_current_columns() -> None:
    run = commbench.load_run(BASELINES / "run-1")
    assert run.schema_version == 1 and run.meta.label == "baseline-1"
    assert set(RESULT_COLUMNS) <= set(run.results.columns)
    assert set(SAMPLE_COLUMNS) <= set(run.samples.columns)
    # what schema 1 meant by the columns added later: no vocabulary, contiguous eager groups
    assert (run.results["vocab"] == 0).all() and (run.samples["vocab"] == 0).all()
    assert (run.results["layout"] == "contiguous").all() and not run.results["cuda_graph"].any()
    assert run.results["temp_mem_bytes"].isna().all()


def test_the_recorded_settings_are_the_typed_model() -> None:
    """In a notebook, `run.meta.config.timing.min_samples`, not a dict's `.get` chain;
    the first schema's runs read the same way."""
    for path in (REPO / "results" / "baselines" / "ci-gloo-4" / "run-1", BASELINES / "run-1"):
        config = commbench.load_run(path).meta.config
        assert isinstance(config, SweepConfig)
        assert config.config_hash() == "a743708c1a1eb49d"  # what the run recorded
        assert config.tokens == [7, 64, 1024] and config.timing.min_samples >= 1


def test_a_current_run_reads_as_written(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run", [(key(), samples_around(50, 6))], label="now")
    run = commbench.load_run(str(path))  # a str is fine in a notebook
    assert run.schema_version == SCHEMA_VERSION and run.label == "now"
    assert math.isclose(run.results["time_us"].iloc[0], run.samples["time_us"].median())


def test_load_runs_stacks_with_a_run_column_and_pivots() -> None:
    runs = commbench.load_runs(sorted(BASELINES.iterdir())[:3])
    assert list(runs.results.columns[:1]) == ["run"] and list(runs.samples.columns[:1]) == ["run"]
    assert sorted(runs.meta) == ["baseline-1", "baseline-2", "baseline-3"]
    assert runs.results.groupby("run").size().tolist() == [30, 30, 30]
    table = runs.results.pivot_table(
        index=["collective", "tokens"], columns="run", values="time_us"
    )
    assert table.shape == (9, 3) and not table.isna().any().any()


def test_repeated_labels_fall_back_to_paths(tmp_path: Path) -> None:
    rows = [(key(), samples_around(50, 6))]
    paths = [write_run(tmp_path / side, rows, label="same") for side in ("a", "b")]
    runs = commbench.load_runs(paths)
    assert sorted(runs.results["run"].unique()) == sorted(map(str, paths))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: (p / "meta.json").unlink(), "run: not a commbench run (no meta.json)"),
        (lambda p: (p / "meta.json").write_text("{"), "meta.json line 1: cut short or not JSON"),
        (
            lambda p: (p / "meta.json").write_text(json.dumps({"schema_version": 99})),
            "run: written by a newer commbench (schema 99; this one reads 1 to",
        ),
        (lambda p: (p / "samples.csv").unlink(), "missing samples.csv"),
    ],
)
def test_unreadable_runs_are_one_line_errors(tmp_path: Path, damage, expected: str) -> None:
    path = write_run(tmp_path / "run", [(key(), samples_around(50, 6))])
    damage(path)
    with pytest.raises(UsageError) as err:
        commbench.load_run(path)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_no_runs_is_an_error() -> None:
    with pytest.raises(UsageError, match="paths: no run directories given"):
        commbench.load_runs([])


def test_documented_example_runs() -> None:
    """The usage page's notebook example, as written there."""
    usage = (REPO / "docs" / "usage.md").read_text()
    example = usage.split("<!-- load_run example -->")[1].split("```python")[1].split("```")[0]
    namespace: dict = {}
    exec(example.replace("results/baselines", str(REPO / "results" / "baselines")), namespace)
    assert isinstance(namespace["table"], pd.DataFrame) and len(namespace["table"])
