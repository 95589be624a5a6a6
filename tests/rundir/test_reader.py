"""The one reader of run directories: every schema step applied in order, real files of
each older schema read in this one's shape, a newer schema refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support.paths import SCHEMA_1_RUNS
from support.runfixtures import key, samples_around, write_run

from commbench.errors import UsageError
from commbench.rundir import resume
from commbench.rundir.meta import UPDATES
from commbench.rundir.reader import ADDED_COLUMNS, read_meta, read_run
from commbench.rundir.schema import (
    META_JSON,
    RESULT_COLUMNS,
    RESULTS_CSV,
    SAMPLES_CSV,
    SCHEMA_VERSION,
)

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor

BASELINE = SCHEMA_1_RUNS / "run-1"
NAN = float("nan")
# What an older schema meant by each later column, written out here rather than read from
# the reader's own table: a wrong fill there must fail a test.
FILLS = {
    2: {"vocab": 0, "padded_vocab": 0, "temp_mem_bytes": NAN},
    3: {"layout": "contiguous", "cuda_graph": False},
    4: {"experts": 0, "topk": 0, "skew": 0.0, "routed_bytes": NAN, "padded_bytes": NAN,
        "imbalance": NAN},
}  # fmt: skip


def _as_schema(path: Path, version: int) -> Path:
    """Rewrite a run as schema `version` wrote it: without the columns and meta keys the
    later steps added, and with that schema's `schema_version` (none in 1)."""
    later = {name for step, added in ADDED_COLUMNS.items() if step > version for name in added}
    for name in (RESULTS_CSV, SAMPLES_CSV):
        frame = pd.read_csv(path / name)
        frame.drop(columns=[c for c in frame.columns if c in later]).to_csv(
            path / name, index=False
        )
    meta = json.loads((path / META_JSON).read_text())
    if version < 3:
        del meta["layout"]
    meta["schema_version"] = version
    if version == 1:
        del meta["schema_version"]
    (path / META_JSON).write_text(json.dumps(meta))
    return path


def test_every_schema_step_has_its_update() -> None:
    assert sorted(UPDATES) == list(range(2, SCHEMA_VERSION + 1))
    assert sorted(ADDED_COLUMNS) == list(range(2, SCHEMA_VERSION + 1))
    assert {step: sorted(added) for step, added in ADDED_COLUMNS.items()} == {
        step: sorted(filled) for step, filled in FILLS.items()
    }  # a new column needs its fill written into FILLS too


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_an_older_schema_reads_in_this_ones_shape(tmp_path: Path, version: int) -> None:
    path = write_run(tmp_path / "run", [(key(), samples_around(50, 6))], label="old")
    now = read_run(path)
    old = read_run(_as_schema(path, version))
    assert old.schema_version == version and old.label == "old"
    assert old.meta.layout == "contiguous"  # update_to_3: every earlier group was
    assert list(old.results[RESULT_COLUMNS].columns) == RESULT_COLUMNS
    assert old.meta.model_dump(exclude={"schema_version"}) == now.meta.model_dump(
        exclude={"schema_version"}
    )
    later = {name: value for step, filled in FILLS.items() if step > version
             for name, value in filled.items()}  # fmt: skip
    kept = [c for c in RESULT_COLUMNS if c not in later]
    pd.testing.assert_frame_equal(old.results[kept], now.results[kept], check_dtype=False)
    for name, value in later.items():  # what the older schema meant by the later columns
        assert old.results[name].fillna(-1).eq(-1 if value != value else value).all(), name
    with pytest.raises(UsageError, match=f"written by another commbench \\(schema {version},"):
        resume.read_meta(path)  # the same reading, refused for resuming: formats would mix


def test_the_committed_schema_1_baseline_reads(tmp_path: Path) -> None:
    run = read_run(BASELINE)
    assert run.schema_version == 1 and run.meta.layout == "contiguous"
    assert run.meta.backend == "gloo" and run.meta.world_size == 4
    assert run.meta.versions.torch and run.meta.host.argv
    assert run.meta.groups == {} and run.meta.stopped is None


def test_resume_and_consumers_read_the_same_meta(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run", [(key(), samples_around(50, 6))], label="now")
    assert resume.read_meta(path) == read_run(path).meta == read_meta(path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"schema_version": SCHEMA_VERSION + 1}, "written by a newer commbench (schema"),
        ({"schema_version": "4"}, "written by a newer commbench (schema '4'"),
        ({"schema_version": 0}, "schema_version: must be 1 or more (got 0)"),
        ({"backend": 4}, "meta.json: backend: Input should be a valid string (got 4)"),
        ({"world_size": "four"}, "meta.json: world_size: Input should be a valid integer"),
        ({"colour": "red"}, "meta.json: unknown key 'colour'"),
    ],
)
def test_a_meta_json_commbench_did_not_write_is_one_line(
    tmp_path: Path, change: dict, expected: str
) -> None:
    path = write_run(tmp_path / "run", [(key(), samples_around(50, 6))])
    meta = json.loads((path / META_JSON).read_text())
    meta.update(change)
    (path / META_JSON).write_text(json.dumps(meta))
    with pytest.raises(UsageError) as raised:
        read_run(path)
    assert expected in str(raised.value) and "\n" not in str(raised.value)


def test_a_meta_without_a_backend_is_refused_not_guessed(tmp_path: Path) -> None:
    """The gate once took a run without `backend` for NCCL; now nothing guesses."""
    path = write_run(tmp_path / "run", [(key(), samples_around(50, 6))])
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    meta = json.loads((copy / META_JSON).read_text())
    del meta["backend"]
    (copy / META_JSON).write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="backend: Field required"):
        read_run(copy)
