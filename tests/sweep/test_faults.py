"""Faults injected into real gloo worlds: Ctrl-C, a killed or hung peer, out of memory,
--max-bytes, --force and --resume. Each test checks the exit, the message and the files."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from support.cli import TINY_SWEEP, SharedRun, commbench, commbench_here, srun_like, tiny_config
from support.paths import HOOKS, REPO

from commbench.errors import ExitCode
from commbench.rundir.lock import LOCK
from commbench.rundir.schema import KEY_COLUMNS
from commbench.sweep.faults import WATCHDOG_GRACE

ROUNDS = 3
POINTS = 20  # TINY_SWEEP on a world of 2 or 3: one split x 2 tokens x 2 dtypes x 5 variants
FAULT_POINTS = 10  # the fault runs: bfloat16 only, so finishing what a fault left is short
TIMEOUT = 10  # seconds: --timeout of the peer-fault runs
MARGIN = 60  # seconds beyond the timeout for start-up and a loaded machine


def fault_config(directory: Path, rounds: int = ROUNDS) -> Path:
    """The tiny sweep in bfloat16 over three rounds, so a run is cut while points are half
    measured."""
    one_dtype = TINY_SWEEP.replace('dtypes = ["bfloat16", "float32"]', 'dtypes = ["bfloat16"]')
    assert one_dtype != TINY_SWEEP
    path = directory / "faults.toml"
    path.write_text(f"rounds = {rounds}\n{one_dtype}")
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


def assert_complete(run: Path, resumes: int = 1) -> dict[str, pd.DataFrame]:
    """A finished run: every point once, every round once, each row from all its rounds."""
    tables = read_intact(run)
    results, rounds = tables["results"], tables["rounds"]
    assert len(results) == FAULT_POINTS and (results["check"] == "pass").all()
    assert len(rounds) == FAULT_POINTS * ROUNDS
    assert (results["rounds"] == ROUNDS).all()
    per_point = rounds.groupby(KEY_COLUMNS)["samples"].sum().rename("total").reset_index()
    merged = results.merge(per_point, on=KEY_COLUMNS)
    assert (merged["samples"] == merged["total"]).all()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["finished"] and len(meta.get("resumed", [])) == resumes
    return tables


def assert_kept(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Every round recorded before the resume is still there, unchanged."""
    merged = before.merge(after, on=[*KEY_COLUMNS, "round"], suffixes=("", "_after"))
    assert len(merged) == len(before)
    assert (merged["samples"] == merged["samples_after"]).all()


def rounds_on_disk(run: Path) -> pd.DataFrame:
    """The rounds a running sweep has recorded so far: its whole lines."""
    text = (run / "rounds.csv").read_text()
    return pd.read_csv(io.StringIO(text[: text.rfind("\n") + 1]))


RESUME = "commbench sweep --resume {run} --nproc 2"  # the world `sweep --nproc 2` made


def assert_stopped_by_a_signal(proc: subprocess.Popen, run: Path) -> pd.DataFrame:
    """Exit 130 at a point boundary, said once with the command that goes on, the files
    whole, and `report` says the run is incomplete; returns the rounds."""
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert stderr.count(f"to measure the rest, run `{RESUME.format(run=run)}`") == 1, stderr
    assert "Traceback" not in stderr, stderr
    meta = json.loads((run / "meta.json").read_text())
    assert meta["stopped"]["reason"] == "interrupted by a signal" and meta["finished"] is None
    tables = read_intact(run)
    report = commbench_here("report", str(run))
    finished = len(tables["results"])  # none: nothing to report, and said so (exit 2)
    said = "commbench: warning: " if finished else "commbench: error: "
    assert report.returncode == (0 if finished else 2), report.stderr
    assert (
        f"{said}{run} is incomplete: {finished} of {FAULT_POINTS} points finished"
        f" (stopped {meta['stopped']['at']}: interrupted by a signal)"
    ) in report.stderr
    return tables["rounds"]


def test_ctrl_c_or_sigterm_stops_cleanly_then_resume_measures_only_the_rest(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    sweep = [sys.executable, "-m", "commbench", "sweep"]
    proc = subprocess.Popen(
        [*sweep, "--nproc", "2", "--config", str(fault_config(tmp_path)), "--out", str(run)],
        start_new_session=True,  # its own process group, as a terminal's foreground job
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_rounds(run, 8, [proc])
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: every process of the group
    before = assert_stopped_by_a_signal(proc, run)
    assert 8 <= len(before) < FAULT_POINTS * ROUNDS

    other = commbench_here("sweep", "--resume", str(run), "--tokens", "1,2")
    assert other.returncode == 2
    assert "resume: " in other.stderr and "tokens: [1, 8] there, [1, 2] here" in other.stderr

    with (run / "samples.csv").open("a") as samples:  # a write cut short by a power cut
        samples.write("all_gather,list,gloo,2,1,2,bfl")
    proc = subprocess.Popen(
        [*sweep, "--resume", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for_rounds(run, len(before) + 4, [proc])
    recorded = rounds_on_disk(run)
    proc.send_signal(signal.SIGTERM)  # the launcher alone, as `kill` or a batch system does
    after_sigterm = assert_stopped_by_a_signal(proc, run)
    assert_kept(before, after_sigterm)
    assert_kept(recorded, after_sigterm)  # nothing measured before the signal is lost
    assert len(after_sigterm) < FAULT_POINTS * ROUNDS

    done = commbench(*RESUME.format(run=run).split()[1:], timeout=300)  # what it said
    assert done.returncode == 0, done.stderr
    assert_kept(after_sigterm, assert_complete(run, resumes=2)["rounds"])
    report = commbench_here("report", str(run))
    assert report.returncode == 0 and "incomplete" not in report.stderr, report.stderr


@pytest.mark.parametrize("fault", ["kill", "hang"])
def test_a_dead_or_hung_peer_ends_every_other_rank(tmp_path: Path, fault: str) -> None:
    """No agent to clean up (as under srun): the timeout and watchdog must end the ranks,
    and they leave without tearing the world down, which could wait for the peer (on NCCL,
    destroying a communicator can): a teardown that never returns is planted."""
    run = tmp_path / "run"
    args = ["sweep", "--config", str(fault_config(tmp_path)), "--out", str(run)]
    teardown_hangs = {
        "PYTHONPATH": os.pathsep.join([str(HOOKS), str(REPO)]),
        "COMMBENCH_TEST_DESTROY_HANGS": "1",
    }
    procs = srun_like(3, [*args, "--timeout", str(TIMEOUT)], tmp_path, env=teardown_hangs)
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
    resume = f"launch `commbench sweep --resume {run}` as this run was launched, the same world"
    assert resume in (tmp_path / "rank0.err").read_text()  # srun's world: no --nproc to give
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
        "import commbench.sweep.runner\n"
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
    closing = f"{len(skipped)} point(s) skipped ({len(skipped)} over --max-bytes), not measured"
    assert closing in done.stdout.replace("\n", " ")
    sampled = pd.read_csv(run / "samples.csv").merge(skipped[KEY_COLUMNS], on=KEY_COLUMNS)
    assert sampled.empty
    report = commbench("report", str(run), timeout=60)
    assert report.returncode == 0, report.stderr


def test_force_replaces_only_a_previous_run(forced_run: SharedRun, tmp_path: Path) -> None:
    """The shared forced run went into a directory holding an earlier run and the user's
    notes.txt: replaced, kept. Without --force, or over what is not a run, refused."""
    config = str(tiny_config(tmp_path))
    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text("{}")
    (run / "results.csv").write_text("old\n")
    refused = commbench_here("sweep", "--nproc", "2", "--config", config, "--out", str(run))
    assert refused.returncode == 2 and "--force replaces a previous run" in refused.stderr
    assert (run / "results.csv").read_text() == "old\n"

    done, forced = forced_run.done, forced_run.path
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(forced / "results.csv")) == POINTS
    assert (forced / "notes.txt").read_text() == "mine\n"
    assert not list(forced.glob("plot-*"))  # the old run's plots went with it
    assert not (forced / LOCK).exists()  # the dead sweep's lock taken over, then let go

    other = tmp_path / "not-a-run"
    other.mkdir()
    (other / "thesis.tex").write_text("precious\n")
    refused = commbench_here(
        "sweep", "--nproc", "2", "--config", config, "--out", str(other), "--force"
    )
    assert refused.returncode == 2 and "not a commbench run directory" in refused.stderr
    assert (other / "thesis.tex").read_text() == "precious\n"


def test_a_second_sweep_into_a_directory_being_written_is_refused(tmp_path: Path) -> None:
    """Sweep A writes the directory (held still while B tries, so it surely is); B with
    --force, and a --resume, are refused in one line naming A, before anything is
    touched; A then runs to its end."""
    run = tmp_path / "run"
    config = str(fault_config(tmp_path))
    first = subprocess.Popen(
        [sys.executable, "-m", "commbench", "sweep", "--nproc", "2", "--config", config,
         "--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_rounds(run, 2, [first])
        held = json.loads((run / LOCK).read_text())
        os.kill(held["pid"], signal.SIGSTOP)  # rank 0, the writer; rank 1 waits for it
        before = (run / "rounds.csv").read_text()
        for extra in (["--force", "--out", str(run)], ["--resume", str(run)]):
            second = commbench("sweep", "--nproc", "2", "--config", config, *extra)
            assert second.returncode == 2, second.stderr
            (line,) = second.stderr.splitlines()
            assert f"is being written by another sweep (pid {held['pid']} on" in line
        assert (run / "rounds.csv").read_text() == before
        os.kill(held["pid"], signal.SIGCONT)
        _, said = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, said
    assert_complete(run, resumes=0)
    assert not (run / LOCK).exists()


WATCHED = """
import sys, threading
from commbench.sweep.faults import Watchdog

class SteppedClock:
    # A clock that moves only when told to; `advance` returns once the watchdog thread
    # has read the new time, so the watchdog has judged exactly that idle time.

    def __init__(self):
        self.now, self.seen = 0.0, None
        self.read = threading.Condition()

    def __call__(self):
        now = self.now
        if threading.current_thread() is not threading.main_thread():
            with self.read:
                self.seen = now
                self.read.notify_all()
        return now

    def advance(self, seconds):
        self.now += seconds
        with self.read:
            self.read.wait_for(lambda: self.seen == self.now)

def last_word(where, idle):
    print(f"expired during {where} after {idle:g} s idle", file=sys.stderr)

clock = SteppedClock()
timeout, beats, step, stuck = float(sys.argv[1]), int(sys.argv[2]), *map(float, sys.argv[3:])
with Watchdog(timeout, last_word, clock) as dog:
    dog.beat("the only point")
    for _ in range(beats):  # progress, each beat after `step` idle seconds
        clock.advance(step)
        dog.beat()
    clock.advance(stuck)  # then stuck, as in a collective that never returns
"""

TIMEOUT_S = 1.0  # the watchdog expires past TIMEOUT_S * WATCHDOG_GRACE idle seconds
BEYOND_TIMEOUT_S = 1.125  # idle past the timeout but within the grace: not yet expired
PAST_GRACE_S = 1.25  # idle past the grace: expired (both exact in binary, as their sums)


@pytest.mark.parametrize(
    ("stuck", "code"), [(BEYOND_TIMEOUT_S, 0), (PAST_GRACE_S, ExitCode.INCOMPLETE)]
)
def test_watchdog_ends_a_process_stuck_past_its_timeout(stuck: float, code: int) -> None:
    """On a clock the test moves: beats BEYOND_TIMEOUT_S apart keep the watchdog quiet,
    however late its thread looks; PAST_GRACE_S without one ends the process, saying
    where it was stuck and for how long. No wall-clock margin decides either."""
    assert TIMEOUT_S < BEYOND_TIMEOUT_S < TIMEOUT_S * WATCHDOG_GRACE < PAST_GRACE_S
    done = subprocess.run(
        [sys.executable, "-c", WATCHED, str(TIMEOUT_S), "4", str(BEYOND_TIMEOUT_S), str(stuck)],
        capture_output=True,
        text=True,
        timeout=MARGIN,  # a liveness bound: the thread looks every 0.12 s
    )
    assert done.returncode == code, done.stderr
    expired = f"expired during the only point after {PAST_GRACE_S:g} s idle\n"
    assert done.stderr == (expired if code else "")


STOPPING = """
import os, signal
from commbench.sweep.faults import StopRequest

with StopRequest() as untouched:
    pass
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
with StopRequest() as stop:
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: noted, the point goes on
    assert stop.requested
os.kill(os.getpid(), signal.SIGINT)  # torchrun's forwarded copy, after the stop
os.kill(os.getpid(), signal.SIGTERM)  # a batch system's
print("stopped once")
"""


def test_signals_after_a_requested_stop_change_nothing_until_the_process_ends() -> None:
    """A rank that is stopping may get the terminal's Ctrl-C, torchrun's copy of it and a
    SIGTERM, in any order: none may raise in what runs after the stop (a traceback
    after the clean stop). Without a stop, the handlers are the process's own again."""
    done = subprocess.run(
        [sys.executable, "-c", STOPPING], capture_output=True, text=True, timeout=MARGIN
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopped once\n", "")


def test_a_rank_whose_peers_never_come_gives_up_after_the_timeout(tmp_path: Path) -> None:
    procs = srun_like(
        2, ["sweep", "--config", str(tiny_config(tmp_path)), "--timeout", "5"], tmp_path
    )
    procs[1].kill()  # rank 1 never joins
    procs[0].wait(timeout=5 + MARGIN)
    stderr = (tmp_path / "rank0.err").read_text()
    assert procs[0].returncode == ExitCode.INCOMPLETE, stderr
    assert "commbench: error: rank 0: could not join the world within --timeout 5 s" in stderr


def workers_of(pid: int) -> list[int]:
    """The commbench workers a launcher has started (its children running commbench)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = []
    for child in map(int, children):
        try:
            if b"commbench" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:  # ended meanwhile
            pass
    return found


def test_ctrl_c_before_the_first_point_says_nothing_was_measured(tmp_path: Path) -> None:
    """A Ctrl-C while the workers start (before any of them wrote the run): one line,
    exit 130, no traceback, no directory left behind."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "commbench", "sweep", "--nproc", "2",
         "--config", str(tiny_config(tmp_path)), "--out", str(run)],
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not workers_of(proc.pid):  # until the workers are being started
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    assert not (run / "meta.json").exists()  # a worker takes seconds to import torch
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert stderr == (
        f"commbench: interrupted before the first point: nothing was measured, and {run}"
        " was not created\n"
    )
    assert not run.exists()


def mem_available() -> int:
    """The host's MemAvailable, in bytes: what the sweep divides among its ranks."""
    line = next(x for x in Path("/proc/meminfo").read_text().splitlines() if "MemAvailable" in x)
    return int(line.split()[1]) * 1024


def test_a_sweep_no_point_of_which_fits_in_memory_is_refused_not_killed(
    tmp_path: Path,
) -> None:
    """`--hidden` so wide that the check's pattern alone exceeds the host's memory: without
    the guard the kernel's OOM killer ends a rank (exit 1, an empty run left)."""
    run = tmp_path / "run"
    hidden = max(10**9, mem_available() // 4)
    done = commbench(
        "sweep", "--nproc", "2", "--hidden", str(hidden), "--tokens", "1", "--out", str(run),
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("commbench: error: memory: no point fits:")
    assert "each of the 2 rank(s) sharing its memory can have" in lines[0]
    assert not run.exists()


def test_a_point_over_the_memory_the_ranks_can_have_is_skipped_with_its_reason(
    tmp_path: Path,
) -> None:
    """T = 1 fits; T = MemAvailable / 16 cannot (its row terms alone would take all the
    host's memory): skipped with the reason, as --max-bytes skips, nothing allocated."""
    run = tmp_path / "run"
    huge = mem_available() // 16
    done = commbench(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)), "--out", str(run),
        "--tokens", f"1,{huge}", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = pd.read_csv(run / "results.csv")
    assert (results.loc[results["tokens"] == 1, "check"] == "pass").all()
    over = results[results["tokens"] == huge]
    assert len(over) == len(results) // 2 and (over["check"] == "skipped").all()
    assert over["note"].str.contains("rank\\(s\\) sharing host memory can have").all()
    closing = f"{len(over)} point(s) skipped ({len(over)} over the memory a rank can have)"
    assert closing in done.stdout.replace("\n", " ")
    assert huge not in set(pd.read_csv(run / "samples.csv")["tokens"])
    # the dry run shows the memory guard's own figure for each point, in the same units
    dry = commbench(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)), "--dry-run",
        "--tokens", f"1,{huge}",
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    shown = {}
    for line in dry.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 9 and cells[3] == str(huge):
            shown[(cells[0], cells[1], cells[2])] = cells[8]
    assert len(shown) == len(over)
    for row in over.itertuples():
        assert f"needs {shown[(row.collective, row.variant, row.dtype)]} per rank" in row.note


def test_a_refused_sweep_writes_nothing_and_crowded_ranks_are_warned_of(tmp_path: Path) -> None:
    """--max-bytes below every point is refused by the workers, before any of them writes
    --out (a rerun is not told it 'already exists'). Two ranks pinned to one core: the
    launcher warns first, once."""
    run = tmp_path / "run"
    done = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-m", "commbench", "sweep", "--nproc", "2",
         "--config", str(tiny_config(tmp_path)), "--out", str(run), "--max-bytes", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "commbench: warning: 2 ranks share 1 CPU core(s) on this host: they wait for each"
        " other, and the times measure that wait",
        "commbench: error: max-bytes: 1 B is below every point (the smallest needs 64 B per rank)",
    ]
    assert not run.exists()
