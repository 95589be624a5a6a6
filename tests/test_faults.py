"""Faults injected into real gloo worlds: Ctrl-C, a killed or hung peer, out of memory,
--max-bytes, --force and --resume. Each test checks the exit, the message and the files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import TINY_SWEEP, commbench, srun_like, tiny_config

from commbench.errors import ExitCode
from commbench.faults import WATCHDOG_GRACE
from commbench.results import KEY_COLUMNS

ROUNDS = 3
POINTS = 20  # TINY_SWEEP on a world of 2 or 3: one split x 2 tokens x 2 dtypes x 5 variants
TIMEOUT = 10  # seconds: --timeout of the peer-fault runs
MARGIN = 60  # seconds beyond the timeout for start-up and a loaded machine


def fault_config(directory: Path) -> Path:
    """The tiny sweep over three rounds, so a run is cut while points are half measured."""
    path = directory / "faults.toml"
    path.write_text(f"rounds = {ROUNDS}\n{TINY_SWEEP}")
    return path


def wait_for_rounds(run: Path, count: int, procs: list[subprocess.Popen]) -> None:
    """Until `count` rounds are on disk; fails if a rank ends first, or after 5 minutes."""
    rounds = run / "rounds.csv"
    deadline = time.monotonic() + 300
    while not rounds.exists() or len(rounds.read_text().splitlines()) <= count:
        for proc in procs:
            assert proc.poll() is None, f"a rank ended early with {proc.returncode}"
        assert time.monotonic() < deadline, f"fewer than {count} rounds after 5 minutes"
        time.sleep(0.2)


def read_intact(run: Path) -> dict[str, pd.DataFrame]:
    """Every file whole (no torn line), and every recorded round backed by its samples."""
    tables = {}
    for name in ("results", "samples", "rank_samples", "rounds"):
        text = (run / f"{name}.csv").read_text()
        assert text.endswith("\n"), f"{name}.csv has a torn last line"
        tables[name] = pd.read_csv(run / f"{name}.csv")
    json.loads((run / "meta.json").read_text())
    by_round = [*KEY_COLUMNS, "round"]
    counted = tables["samples"].groupby(by_round).size().rename("counted").reset_index()
    merged = tables["rounds"].merge(counted, on=by_round, how="left")
    assert (merged["counted"] == merged["samples"]).all()
    assert not tables["rounds"].duplicated(by_round).any()
    assert not tables["results"].duplicated(KEY_COLUMNS).any()
    return tables


def assert_complete(run: Path) -> dict[str, pd.DataFrame]:
    """A finished run: every point once, every round once, each row from all its rounds."""
    tables = read_intact(run)
    results, rounds = tables["results"], tables["rounds"]
    assert len(results) == POINTS and (results["check"] == "pass").all()
    assert len(rounds) == POINTS * ROUNDS
    assert (results["rounds"] == ROUNDS).all()
    per_point = rounds.groupby(KEY_COLUMNS)["samples"].sum().rename("total").reset_index()
    merged = results.merge(per_point, on=KEY_COLUMNS)
    assert (merged["samples"] == merged["total"]).all()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["finished"] and len(meta["resumed"]) == 1
    return tables


def assert_kept(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Every round recorded before the resume is still there, unchanged."""
    merged = before.merge(after, on=[*KEY_COLUMNS, "round"], suffixes=("", "_after"))
    assert len(merged) == len(before)
    assert (merged["samples"] == merged["samples_after"]).all()


@pytest.mark.dist
def test_ctrl_c_stops_cleanly_then_resume_measures_only_the_rest(tmp_path: Path) -> None:
    run = tmp_path / "run"
    sweep = [sys.executable, "-m", "commbench", "sweep", "--nproc", "2"]
    proc = subprocess.Popen(
        [*sweep, "--config", str(fault_config(tmp_path)), "--out", str(run)],
        start_new_session=True,  # its own process group, as a terminal's foreground job
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_rounds(run, 8, [proc])
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: every process of the group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert f"run the same command with --resume {run}" in stderr
    assert "Traceback" not in stderr
    meta = json.loads((run / "meta.json").read_text())
    assert meta["stopped"]["reason"] == "interrupted by a signal" and meta["finished"] is None
    before = read_intact(run)["rounds"]
    assert 8 <= len(before) < POINTS * ROUNDS

    other = commbench("sweep", "--resume", str(run), "--tokens", "1,2", timeout=120)
    assert other.returncode == 2
    assert "resume: " in other.stderr and "tokens: [1, 8] there, [1, 2] here" in other.stderr

    with (run / "samples.csv").open("a") as samples:  # a write cut short by a power cut
        samples.write("all_gather,list,gloo,2,1,2,bfl")
    done = commbench("sweep", "--resume", str(run), timeout=300)
    assert done.returncode == 0, done.stderr
    assert_kept(before, assert_complete(run)["rounds"])


@pytest.mark.dist
@pytest.mark.parametrize("fault", ["kill", "hang"])
def test_a_dead_or_hung_peer_ends_every_other_rank(tmp_path: Path, fault: str) -> None:
    """No agent to clean up (as under srun): the timeout and watchdog must end the ranks."""
    run = tmp_path / "run"
    args = ["sweep", "--config", str(fault_config(tmp_path)), "--out", str(run)]
    procs = srun_like(3, [*args, "--timeout", str(TIMEOUT)], tmp_path)
    victim, survivors = procs[1], [procs[0], procs[2]]
    try:
        wait_for_rounds(run, 5, procs)
        os.kill(victim.pid, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
        for proc in survivors:  # a liveness bound, not a speed figure
            proc.wait(timeout=TIMEOUT * WATCHDOG_GRACE + MARGIN)
    finally:
        for proc in procs:
            proc.kill()
    for rank, proc in ((0, procs[0]), (2, procs[2])):
        stderr = (tmp_path / f"rank{rank}.err").read_text()
        assert proc.returncode == ExitCode.INCOMPLETE, stderr
        assert f"commbench: error: rank {rank}: " in stderr and "(round " in stderr
        assert "Traceback" not in stderr
    assert f"--resume {run}" in (tmp_path / "rank0.err").read_text()
    assert json.loads((run / "meta.json").read_text())["stopped"]
    before = read_intact(run)["rounds"]
    if fault == "kill":  # a new world finishes what the broken one left
        done = commbench("sweep", "--resume", str(run), timeout=300)
        assert done.returncode == 0, done.stderr
        assert_kept(before, assert_complete(run)["rounds"])


BIG_SWEEP = """
tokens = [8, 32768]
hidden = [16384]
dtypes = ["float32"]
collectives = ["all_reduce"]
[timing]
warmup = 1
min_sample_ms = 1.0
max_iters = 5
min_samples = 2
max_samples = 3
target_ci = 0.5
max_seconds = 0.2
"""


HEADROOM = 5 * 1024**3 // 4  # bytes: the 8-token point fits, one 2 GiB buffer does not


def mapped_after_import() -> int:
    """Bytes of address space a rank has mapped once the runner (and torch) are imported.

    The CUDA build of torch maps several GiB of libraries before any tensor exists (the
    CPU build about 0.6 GiB): a fixed limit would kill that rank in `import torch`.
    """
    code = (
        "import commbench.runner\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmPeak')][0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return int(done.stdout.split()[-1]) * 1024


def wait_all(procs: list[subprocess.Popen], logs: Path, timeout: float) -> None:
    """Until every rank ends; a rank that fails ends the others at once (no long hang)."""
    deadline = time.monotonic() + timeout
    while any(proc.poll() is None for proc in procs):
        failed = [rank for rank, proc in enumerate(procs) if proc.poll() not in (None, 0)]
        if failed or time.monotonic() > deadline:
            for proc in procs:
                proc.kill()
            said = (logs / f"rank{failed[0]}.err").read_text() if failed else "timed out"
            pytest.fail(f"rank(s) {failed} failed: {said}")
        time.sleep(0.2)


@pytest.mark.dist
def test_out_of_memory_on_one_rank_skips_the_point_on_all(tmp_path: Path) -> None:
    """Rank 1 may map only a little more than it needs to start: the 2 GiB point cannot
    be allocated there, only."""
    config = tmp_path / "big.toml"
    config.write_text(BIG_SWEEP)
    run = tmp_path / "run"
    limit = {1: ["prlimit", f"--as={mapped_after_import() + HEADROOM}"]}
    procs = srun_like(2, ["sweep", "--config", str(config), "--out", str(run)], tmp_path, limit)
    wait_all(procs, tmp_path, timeout=300)
    assert [proc.returncode for proc in procs] == [0, 0], (tmp_path / "rank1.err").read_text()
    results = pd.read_csv(run / "results.csv").set_index("tokens")
    assert results.loc[8, "check"] == "pass"
    assert results.loc[32768, "check"] == "skipped"
    assert "out of memory on rank 1" in results.loc[32768, "note"]
    assert set(pd.read_csv(run / "samples.csv")["tokens"]) == {8}


@pytest.mark.dist
def test_max_bytes_skips_what_does_not_fit(tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = str(tiny_config(tmp_path))
    done = commbench(
        "sweep", "--nproc", "2", "--config", config, "--out", str(run), "--max-bytes", "600"
    )
    assert done.returncode == 0, done.stderr
    results = pd.read_csv(run / "results.csv")
    skipped = results[results["check"] == "skipped"]
    small = (results["tokens"] == 1) & (results["dtype"] == "bfloat16")
    large = (results["tokens"] == 8) & (results["dtype"] == "float32")
    assert (results.loc[small, "check"] == "pass").all()
    assert (results.loc[large, "check"] == "skipped").all()
    assert skipped["note"].str.contains("over --max-bytes").all()
    sampled = pd.read_csv(run / "samples.csv").merge(skipped[KEY_COLUMNS], on=KEY_COLUMNS)
    assert sampled.empty
    report = commbench("report", str(run), timeout=60)
    assert report.returncode == 0, report.stderr


def test_force_replaces_only_a_previous_run(tmp_path: Path) -> None:
    config = str(tiny_config(tmp_path))
    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text("{}")
    (run / "results.csv").write_text("old\n")
    (run / "notes.txt").write_text("mine\n")
    refused = commbench("sweep", "--nproc", "2", "--config", config, "--out", str(run))
    assert refused.returncode == 2 and "--force replaces a previous run" in refused.stderr
    assert (run / "results.csv").read_text() == "old\n"

    done = commbench("sweep", "--nproc", "2", "--config", config, "--out", str(run), "--force")
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(run / "results.csv")) == POINTS
    assert (run / "notes.txt").read_text() == "mine\n"

    other = tmp_path / "not-a-run"
    other.mkdir()
    (other / "thesis.tex").write_text("precious\n")
    refused = commbench("sweep", "--nproc", "2", "--config", config, "--out", str(other), "--force")
    assert refused.returncode == 2 and "not a commbench run directory" in refused.stderr
    assert (other / "thesis.tex").read_text() == "precious\n"


WATCHED = """
import sys, time
from commbench.faults import Watchdog

def last_word(where, idle):
    print(f"expired during {where}", file=sys.stderr)

with Watchdog(float(sys.argv[1]), last_word) as dog:
    dog.beat("the only point")
    for _ in range(int(sys.argv[2])):  # progress: a beat every 0.1 s
        time.sleep(0.1)
        dog.beat()
    time.sleep(float(sys.argv[3]))  # then stuck, as in a collective that never returns
"""


@pytest.mark.parametrize(
    ("beats", "stuck", "code"), [(20, 0.0, 0), (20, 60.0, ExitCode.INCOMPLETE)]
)
def test_watchdog_ends_a_process_stuck_past_its_timeout(
    beats: int, stuck: float, code: int
) -> None:
    """Beating every 0.1 s for 2 s keeps a 0.5 s watchdog quiet; being stuck does not."""
    done = subprocess.run(
        [sys.executable, "-c", WATCHED, "0.5", str(beats), str(stuck)],
        capture_output=True,
        text=True,
        timeout=MARGIN,
    )
    assert done.returncode == code
    assert ("expired during the only point" in done.stderr) == bool(code)


def test_a_rank_whose_peers_never_come_gives_up_after_the_timeout(tmp_path: Path) -> None:
    procs = srun_like(
        2, ["sweep", "--config", str(tiny_config(tmp_path)), "--timeout", "5"], tmp_path
    )
    procs[1].kill()  # rank 1 never joins
    procs[0].wait(timeout=5 + MARGIN)
    stderr = (tmp_path / "rank0.err").read_text()
    assert procs[0].returncode == ExitCode.INCOMPLETE, stderr
    assert "commbench: error: rank 0: could not join the world within --timeout 5 s" in stderr
