"""Damaged runs are refused, never read as whole: copies of a real run (the shared
two-rank sweep) cut as a crash or a partial copy cuts them. Every reader says, in one
line, which file and line and how to repair it (exit 2); `sweep --resume` repairs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support.cli import SharedRun, commbench, commbench_here

import commbench as api
from commbench.errors import UsageError

RESULT_ROWS = 20  # the shared sweep's points


def copy_of(run: SharedRun, tmp_path: Path) -> Path:
    assert run.done.returncode == 0, run.done.stderr
    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy)
    return copy


def cut_mid_line(path: Path, near: int) -> int:
    """Cut the file in the middle of the line at byte `near`, as a crash mid-write or a
    partial copy does; returns the number of the line cut."""
    data = path.read_bytes()
    start = data.rindex(b"\n", 0, near) + 1
    end = data.index(b"\n", start)
    assert end - start > 2
    path.write_bytes(data[: (start + end) // 2])
    return data.count(b"\n", 0, start) + 1


def cut_lines(path: Path, keep: int) -> None:
    """Keep the first `keep` whole lines: a copy cut at a line's end."""
    lines = path.read_text().splitlines(keepends=True)
    assert 0 < keep < len(lines)
    path.write_text("".join(lines[:keep]))


def readers(run: Path, intact: Path) -> list[list[str]]:
    """Every command that reads runs, each given the damaged one (the gate as CURRENT
    and as BASELINE)."""
    return [
        ["report", str(run)],
        ["gate", str(intact), str(run)],
        ["gate", str(run), str(intact)],
        ["compare", str(intact), str(run), "--labels", "intact,damaged"],
        ["export", str(run), "--format", "github"],
        ["plot", str(run), "--out", str(run.parent / "plots")],
    ]


def assert_refused_everywhere(run: Path, intact: Path, expected: str) -> None:
    """Each reader: exit 2, the one line (file, line, repair), no traceback, no output;
    `commbench.load_run` raises the same UsageError."""
    line = f"commbench: error: {expected}"
    for args in readers(run, intact):
        done = commbench_here(*args)
        assert (done.returncode, done.stdout) == (2, ""), (args, done.stderr)
        assert done.stderr.startswith(line) and done.stderr.count("\n") == 1, (args, done.stderr)
    with pytest.raises(UsageError) as raised:
        api.load_run(run)
    assert f"commbench: error: {raised.value}\n" == done.stderr


REPAIR = "`commbench sweep --resume {run}` drops what is damaged and measures it again"


def test_a_results_csv_whose_last_row_is_cut_is_refused_then_resume_repairs_it(
    local_run: SharedRun, tmp_path: Path
) -> None:
    run = copy_of(local_run, tmp_path)
    results = run / "results.csv"
    line = cut_mid_line(results, results.stat().st_size - 2)  # the last row
    assert line == RESULT_ROWS + 1
    expected = f"{results} line {line}: cut short ("
    assert_refused_everywhere(run, local_run.path, expected)
    assert REPAIR.format(run=run) in commbench_here("report", str(run)).stderr

    done = commbench("sweep", "--resume", str(run), timeout=300)
    assert done.returncode == 0, done.stderr
    repaired = api.load_run(run)
    assert len(repaired.results) == RESULT_ROWS and (repaired.results["check"] == "pass").all()
    assert not repaired.results["time_us"].isna().any()


@pytest.mark.parametrize("how", ["bytes", "lines"])
def test_a_samples_csv_cut_in_half_is_refused_then_resume_measures_what_was_lost(
    local_run: SharedRun, tmp_path: Path, how: str
) -> None:
    """Cut mid-line, the line is named; cut at a line's end, the first results row whose
    samples are short is."""
    run = copy_of(local_run, tmp_path)
    samples = run / "samples.csv"
    lines = samples.read_text().splitlines(keepends=True)
    if how == "bytes":
        line = cut_mid_line(samples, samples.stat().st_size // 2)
        expected = f"{samples} line {line}: cut short ("
    else:
        cut_lines(samples, len(lines) // 2)
        expected = f"{samples}: holds "
    assert_refused_everywhere(run, local_run.path, expected)
    if how == "lines":
        return  # the same repair as the cut mid-line: run once
    done = commbench("sweep", "--resume", str(run), timeout=300)
    assert done.returncode == 0, done.stderr
    repaired = api.load_run(run)
    assert len(repaired.results) == RESULT_ROWS
    counted = repaired.samples.groupby(["collective", "variant", "dtype", "tokens"]).size()
    assert counted.sum() == repaired.results["samples"].sum()


def test_a_header_only_results_csv_is_refused_not_exported_empty(
    local_run: SharedRun, tmp_path: Path
) -> None:
    run = copy_of(local_run, tmp_path)
    cut_lines(run / "results.csv", 1)
    expected = f"{run / 'results.csv'}: no rows, though meta.json says the run finished"
    assert_refused_everywhere(run, local_run.path, expected)


def test_a_finished_run_missing_rows_is_refused(local_run: SharedRun, tmp_path: Path) -> None:
    """Cut at a line's end, results.csv looks whole: meta.json knows how many points."""
    run = copy_of(local_run, tmp_path)
    cut_lines(run / "results.csv", 8)
    expected = f"{run / 'results.csv'}: holds 7 of the {RESULT_ROWS} points meta.json says"
    assert_refused_everywhere(run, local_run.path, expected)


def test_a_last_row_short_of_a_field_but_whole_is_refused(
    local_run: SharedRun, tmp_path: Path
) -> None:
    """The field count alone: the line ends with its newline."""
    run = copy_of(local_run, tmp_path)
    results = run / "results.csv"
    lines = results.read_text().splitlines(keepends=True)
    fields = lines[-1].rstrip("\n").split(",")
    lines[-1] = ",".join(fields[:-1]) + "\n"
    results.write_text("".join(lines))
    expected = f"{results} line {len(lines)}: cut short ({len(fields) - 1} of {len(fields)} fields)"
    assert_refused_everywhere(run, local_run.path, expected)


def test_a_file_lacking_only_its_last_newline_is_refused(
    local_run: SharedRun, tmp_path: Path
) -> None:
    """The end of line alone: every field is there."""
    run = copy_of(local_run, tmp_path)
    results = run / "results.csv"
    results.write_bytes(results.read_bytes()[:-1])
    expected = f"{results} line {RESULT_ROWS + 1}: cut short (no end of line)"
    assert_refused_everywhere(run, local_run.path, expected)


@pytest.mark.parametrize("name", ["results.csv", "samples.csv"])
def test_a_finished_run_lacking_only_its_last_row_is_refused(
    local_run: SharedRun, tmp_path: Path, name: str
) -> None:
    """Whole lines, the last one gone: meta.json's count of points, and results.csv's
    count of samples, say what is missing."""
    run = copy_of(local_run, tmp_path)
    lines = (run / name).read_text().splitlines(keepends=True)
    cut_lines(run / name, len(lines) - 1)
    if name == "results.csv":
        expected = f"{run / name}: holds {RESULT_ROWS - 1} of the {RESULT_ROWS} points"
    else:
        expected = f"{run / name}: holds "
    assert_refused_everywhere(run, local_run.path, expected)


def test_a_cut_meta_json_is_refused_with_its_line(local_run: SharedRun, tmp_path: Path) -> None:
    run = copy_of(local_run, tmp_path)
    meta = run / "meta.json"
    line = cut_mid_line(meta, meta.stat().st_size // 2)
    expected = f"{meta} line {line}: cut short or not JSON ("
    assert_refused_everywhere(run, local_run.path, expected)
    assert "copy the run again" in commbench_here("report", str(run)).stderr


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "nothing", "{run}: not a run directory"),
        (lambda tmp: tmp, "{run}: not a commbench run (no meta.json)"),
    ],
    ids=["missing", "not-a-run"],
)
def test_what_is_not_a_run_is_one_line(tmp_path: Path, make, expected: str) -> None:
    run = make(tmp_path)
    (tmp_path / "notes.txt").write_text("mine\n")
    for args in readers(run, run):
        done = commbench_here(*args)
        assert (done.returncode, done.stdout) == (2, ""), (args, done.stderr)
        assert done.stderr.count("\n") == 1 and str(run) in done.stderr, (args, done.stderr)
    assert done.stderr == f"commbench: error: {expected.format(run=run)}\n"  # plot's


def test_an_intact_copy_reads_whole(local_run: SharedRun, tmp_path: Path) -> None:
    """The control: the same copy, uncut, is read by every reader; the gate, which would
    judge the run against itself, says so."""
    run = copy_of(local_run, tmp_path)
    for args in readers(run, local_run.path):
        done = commbench_here(*args)
        if args[0] == "gate":
            assert done.returncode == 2 and "judged against itself" in done.stderr, done.stderr
            continue
        assert done.returncode == 0, (args, done.stderr)
        assert "is incomplete" not in done.stderr
    assert len(api.load_run(run).results) == RESULT_ROWS
    meta = json.loads((run / "meta.json").read_text())
    assert meta["points"] == RESULT_ROWS and meta["finished"]
    assert len(pd.read_csv(run / "results.csv")) == RESULT_ROWS
