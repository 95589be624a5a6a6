"""gpu-check's checks and their judging on real run directories, made here by the checks'
own sweeps on gloo (the same configs gpu-check runs on NCCL): skipped rows, N/A, not run,
predicted failures, the stopped rank's path, and the evidence left in the work directory."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pandas as pd
import pytest
from support.cli import commbench
from support.paths import HOOKS, REPO
from support.runfixtures import key, samples_around, write_run

from commbench.env.nccl import bound_nccl
from commbench.gpucheck import sweeps
from commbench.gpucheck.checks import check_exact, check_graph_replay
from commbench.gpucheck.judge import (
    exact_unless_scrambled,
    judge_device_peak,
    judge_rows,
    nccl_scrambles,
    skipped,
)
from commbench.gpucheck.ncclcheck import cached_libraries, check_nccl_lib, copy_library
from commbench.gpucheck.ranks import Runner
from commbench.gpucheck.stopcheck import CONTROL, NCCL, WATCHDOG, check_stopped_rank, stop_path
from commbench.gpucheck.verdict import FAIL, NA, NOT_RUN, PASS
from commbench.rundir.reader import read_meta, read_run


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runner, list]:
    """The exact check's sweep on two gloo ranks, in a work directory kept for the tests;
    scipy cannot be imported in its ranks (gpu-check does not ask for it)."""
    run = Runner(tmp_path_factory.mktemp("gpucheck"), REPO)
    run.env.update(planted(COMMBENCH_TEST_WITHOUT="scipy"))
    return run, check_exact(run, 2, False, 300, backend="gloo")


def planted(**hooks: str) -> dict[str, str]:
    """The environment that loads tests/support/hooks with `hooks` set."""
    return {"PYTHONPATH": os.pathsep.join([str(HOOKS), str(REPO)]), **hooks}


@pytest.mark.parametrize(
    ("crash", "said"),
    [
        ("=1", "exit codes [1, 1]: not a whole run"),  # exit 1, a failed check's code
        ("", "exit codes [70, 70] (None: killed at the time limit); rank 0 said 'commbench:"),
    ],
)
def test_a_crash_midway_fails_the_exact_rows(tmp_path: Path, crash: str, said: str) -> None:
    """Both ranks die midway, having written some rows: a failed check's exit code (1) or
    a bug's (70), the rows written do not pass."""
    run = Runner(tmp_path, REPO)
    run.env.update(planted(COMMBENCH_TEST_CRASH=f"all_reduce@150{crash}"))
    rows, temp_mem = check_exact(run, 2, False, 300, backend="gloo")
    assert rows.status == temp_mem.status == FAIL
    assert said in rows.measured
    if crash:
        assert re.match(r"\d+ of 270 rows written, ", rows.measured), rows.measured
        assert not rows.measured.startswith("0 of"), rows.measured


def test_a_step_killed_at_its_limit_says_how_far_it_got(tmp_path: Path) -> None:
    run = Runner(tmp_path, REPO)
    run.env.update(planted(COMMBENCH_TEST_CRASH="all_reduce@150=hang"))
    rows, _ = check_exact(run, 2, False, 30, backend="gloo")
    assert rows.status == FAIL
    assert "exit codes [None, None] (None: killed at the time limit)" in rows.measured
    assert re.search(r"; [1-9]\d* of 270 rows written$", rows.measured), rows.measured


def test_the_exact_sweep_covers_every_collective_and_passes_as_predicted(exact) -> None:
    run, (rows, temp_mem) = exact
    assert (rows.name, rows.status) == ("exact rows", PASS), rows.measured
    assert (temp_mem.status, temp_mem.measured) == (NA, "gloo has no device allocator")
    results = read_run(run.work / "run-1").results
    assert set(results["collective"]) == set(sweeps.EVERY_COLLECTIVE)
    routed = results[results["collective"] == "all_to_all_combine"]
    assert set(routed["variant"]) == set(sweeps.EVERY_VARIANT)
    assert not results.apply(nccl_scrambles, axis=1).any()  # on gloo: predicted for NCCL only
    on_nccl = results.assign(backend="nccl").apply(nccl_scrambles, axis=1)
    assert on_nccl.sum() == 6  # T=5 and 8 x 3 dtypes
    assert (results[on_nccl]["check"] == "pass").all()  # what gloo really did
    assert results[on_nccl]["note"].str.contains("on NCCL this path is expected").all()
    assert set(results[on_nccl]["vocab"]) == {25} and set(results[on_nccl]["tp"]) == {2}


def test_every_run_and_rank_log_is_kept(exact) -> None:
    run, _ = exact
    kept = {path.name for path in run.work.iterdir()}
    assert {"config-2.toml", "run-1", "logs-3"} <= kept
    assert {"rank0.out", "rank0.err", "rank1.out", "rank1.err"} <= {
        path.name for path in (run.work / "logs-3").iterdir()
    }
    assert (run.work / "run-1" / "meta.json").exists()


def test_a_failure_not_predicted_fails_the_rows_and_names_them(exact) -> None:
    run, _ = exact
    results = read_run(run.work / "run-1").results
    logits = results["collective"] == "logits_gather"
    text, ok = judge_rows(
        results, lambda row: "fail" if row["collective"] == "logits_gather" else "pass"
    )
    assert not ok
    assert "unexpected: logits_gather/" in text and ": pass, expected fail" in text
    assert f"and {logits.sum() - 3} more" in text  # three named, the rest counted


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A real sweep whose larger points are over --max-bytes: skipped, with the reason."""
    out = tmp_path_factory.mktemp("capped") / "run"
    config = out.parent / "config.toml"
    config.write_text(sweeps.huge(1, "gloo").replace("65536", "4096").replace("2097152", "256"))
    done = commbench(
        "sweep", "--nproc", "1", "--config", str(config), "--out", str(out), "--max-bytes", "1MiB"
    )
    assert done.returncode == 0, done.stderr
    return read_run(out).results.sort_values("tokens").reset_index(drop=True)


def test_a_skipped_row_passes_only_where_a_skip_is_predicted(capped: pd.DataFrame) -> None:
    assert list(capped["check"]) == ["pass", "skipped"]  # 8 x 256, then 4096 x 256 (2 MiB)
    text, ok = judge_rows(capped, exact_unless_scrambled)
    assert not ok and "T=4096 tp=1 H=256: skipped, expected pass (skipped: needs" in text
    text, ok = judge_rows(capped, lambda row: "skipped" if row["tokens"] > 8 else "pass")
    assert ok and "1 pass, 1 skipped" in text and "over --max-bytes" in text
    text, ok = judge_rows(capped, skipped)
    assert not ok and text.endswith("T=8 tp=1 H=256: pass, expected skipped")  # it ran


def test_a_skip_without_its_reason_fails(capped: pd.DataFrame) -> None:
    silent = capped.assign(note="")
    text, ok = judge_rows(silent, lambda row: "skipped" if row["tokens"] > 8 else "pass")
    assert not ok and "skipped, expected skipped (no reason given)" in text
    assert judge_rows(capped.iloc[:0], skipped) == ("no rows", False)


def test_the_device_peak_is_read_from_meta_json(tmp_path: Path) -> None:
    rows = [(key(), samples_around(10.0))]
    peaks = {"device_peak_bytes": [3 * 2**20, 2 * 2**20]}
    memory = read_meta(write_run(tmp_path / "gpu", rows, memory=peaks)).memory
    assert judge_device_peak(memory, 2 * 2**20) == (
        "lowest rank's 2.0 MiB, at least 2.0 MiB wanted",
        True,
    )
    assert not judge_device_peak(memory, 2 * 2**20 + 1)[1]
    unknown = read_meta(write_run(tmp_path / "cpu", rows, memory={"device_peak_bytes": [None]}))
    assert judge_device_peak(unknown.memory, 1) == (
        "device_peak_bytes [None]: not known on every rank",
        False,
    )
    assert not judge_device_peak(None, 1)[1]


def test_the_graph_replay_check_runs_every_point_on_gloo_eagerly(exact) -> None:
    run, _ = exact
    (check,) = check_graph_replay(run, 2, False, 240, True, backend="gloo")
    assert check.status == PASS, check.measured
    assert check.measured.startswith("2 rank(s): 60 rows: 60 pass")  # NCCL's defect: a note


def test_a_stopped_rank_on_gloo_is_ended_by_the_control_timeout(exact) -> None:
    """Rank 0 waits for the stopped rank in a gloo collective: gloo's timeout frees it."""
    run, _ = exact
    check = check_stopped_rank(run, False, 120, backend="gloo")
    assert check.status == PASS, check.measured
    assert check.measured == f"ended by {CONTROL}; exit 3, stopped=True, hint=True"


def test_the_path_that_ended_a_stopped_run() -> None:
    assert stop_path(3, "no progress for 12 s at all_gather (round 2)") == WATCHDOG
    assert stop_path(3, "a collective failed at x: Timed out waiting 10000ms") == CONTROL
    assert stop_path(3, "a collective failed at x: NCCL error: remote process exited").startswith(
        NCCL
    )
    assert stop_path(-signal.SIGABRT, None) == f"{NCCL}'s watchdog (SIGABRT)"
    assert stop_path(None, None) == "none: rank 0 did not exit"
    hung = stop_path(None, "no progress for 12 s at x")
    assert hung == f"{WATCHDOG}, then rank 0 hung on its way out"
    assert stop_path(0, None) == "none recorded (exit 0)"


def test_without_a_bound_libnccl_the_nccl_lib_check_says_why_it_did_not_run(exact) -> None:
    run, _ = exact
    check = check_nccl_lib(run, None, 60)
    if bound_nccl() is None:  # a CPU build of torch binds none
        assert check.status == NOT_RUN and "binds no libnccl" in check.measured
    else:  # the CUDA build without a GPU: the copy is made, its NCCL sweep is refused
        assert check.status == FAIL and check.measured.startswith("exit 2; log "), check
        log = Path(check.measured.removeprefix("exit 2; log "))
        assert "'nccl' needs CUDA GPUs" in log.read_text()  # the evidence is kept
    copy = copy_library(str(run.work / "config-2.toml"), run.work / "copy")
    assert (
        copy.name == "libnccl.so.2"
        and copy.read_bytes() == (run.work / "config-2.toml").read_bytes()
    )


def test_a_second_libnccl_is_looked_for_in_the_loaders_cache() -> None:
    listing = (
        "612 libs found in cache `/etc/ld.so.cache'\n"
        "\tlibnccl.so.2 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so.2\n"
        "\tlibnccl.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so\n"
        "\tlibnccl-net.so (libc6,x86-64) => /opt/aws-ofi-nccl/lib/libnccl-net.so\n"
        "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n"
    )
    assert cached_libraries(listing) == [
        "/usr/lib/x86_64-linux-gnu/libnccl.so.2",
        "/usr/lib/x86_64-linux-gnu/libnccl.so",
    ]


def test_the_out_of_memory_sweep_skips_what_this_machine_cannot_hold(tmp_path: Path) -> None:
    """gpu-check's own out-of-memory sweep, on gloo: the 256 GiB point is over any host's
    memory too, so the memory guard skips it with its reason and the 32 MiB point beside
    it passes; a sweep of the big point alone would be refused before it started."""
    out, config = tmp_path / "run", tmp_path / "config.toml"
    config.write_text(sweeps.huge(1, "gloo"))
    done = commbench("sweep", "--nproc", "1", "--config", str(config), "--out", str(out))
    assert done.returncode == 0, done.stderr
    results = read_run(out).results
    text, ok = judge_rows(results, sweeps.huge_expected)
    assert ok, text
    assert sorted(results["check"]) == ["pass", "skipped"]
