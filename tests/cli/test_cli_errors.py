"""Bad input: one line naming field and value, exit 2, no traceback, never a hang.

Each kind of bad value is refused in this process, through the CLI's entry point
(`commbench_here`); the whole path (a fresh interpreter, a launcher, every rank, said once)
is run end to end by the tests below that start `python -m commbench` or torchrun."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import ROOT, commbench, commbench_here, tiny_config, torchrun
from support.paths import SCHEMA_1_RUNS

from commbench.config.settings import CONFIG_DIR

CASES = [
    (["--tokens", "0"], "tokens: Input should be greater than 0 (got '0')"),
    (["--tokens", "1,x"], "tokens: Input should be a valid integer"),
    (["--hidden", "-4"], "hidden: Input should be greater than 0"),
    (["--dtypes", "fp8"], "dtypes: Input should be 'bfloat16', 'float16' or 'float32'"),
    (["--collectives", "broadcast"], "--collectives: Input should be 'all_gather', "),
    (["--variants", "both"], "variants: Input should be 'list', 'tensor' or 'padded'"),
    (["--backend", "mpi"], "backend: Input should be 'auto', 'nccl' or 'gloo'"),
    (["--backend", "nccl"], "backend: 'nccl' needs CUDA GPUs"),
    (["--tp", "3"], "tp: 3 does not divide the world size 2"),
    (["--config", "/nonexistent/sweep.toml"], "cannot read"),
    (["--nproc", "0"], "nproc: must be at least 1"),
    (["--preset", "nope"], "preset: unknown 'nope', expected one of ['deepseek-v3', "),
    (["--preset", "deepseek-v3"], "tp: 8 does not divide the world size 2"),
    (
        ["--preset", "odd-vocab", "--config", str(CONFIG_DIR / "ci.toml")],
        "preset: cannot be combined with --config",
    ),
    (["--max-tokens", "0"], "max-tokens: 0 leaves no token count (tokens are [1, 7, 128, 2048])"),
    (["--tokens", "64,128", "--max-tokens", "32"], "max-tokens: 32 leaves no token count"),
    (["--rounds", "0"], "rounds: Input should be greater than 0 (got '0')"),
    (["--min-samples", "1"], "--min-samples: Input should be greater than or equal to 2"),
    (["--target-ci", "1.5"], "--target-ci: Input should be less than 1"),
    (["--seed", "x"], "seed: Input should be a valid integer"),
    (["--timeout", "0"], "timeout: Input should be greater than 0 (got '0')"),
    (["--max-bytes", "lots"], "--max-bytes: could not parse value and unit from byte string"),
    (["--max-bytes", "0"], "--max-bytes: Input should be greater than 0"),
    (["--group-layout", "diagonal"], "--group-layout: Input should be 'contiguous' or 'strided'"),
    (["--vocab", "-1"], "vocab: Input should be greater than 0"),
    (["--collectives", "logits_gather"], "vocab: logits_gather needs at least one vocab size"),
    (["--variants", "list", "--collectives", "all_reduce"], "variants: ['list'] has nothing"),
    (["--resume", "/nonexistent/run"], "resume: /nonexistent/run: not a run directory"),
    (["--resume", "/tmp", "--out", "x"], "resume: cannot be combined with --out or --force"),
    (["--cuda-graph"], "cuda-graph: needs the nccl backend on CUDA GPUs; this run uses gloo"),
    (["--out", "/dev/null/run"], "out: '/dev/null/run' cannot be created: '/dev/null' is a file"),
]

CONFIG_FILES = [
    ("tokens = [1,\n", "invalid TOML"),
    ("tokens = 'many'\n", "tokens: Input should be a valid list (got 'many')"),
    ("[timing]\nwarmup = -1\n", "timing.warmup: Input should be greater than or equal to 0"),
    ("[timing]\nspeed = 1\n", "unknown key 'timing.speed'"),
    ("tp = [5]\n", "tp: 5 does not divide the world size 2"),
    ("max_bytes = 1\n", "max-bytes: 1 B is below every point"),
]


def _assert_one_line_error(stderr: str, expected: str) -> None:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("commbench: error:")]
    assert lines, stderr
    assert expected in lines[0]


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_bad_flags_exit_2(args: list[str], expected: str) -> None:
    done = commbench_here("sweep", "--nproc", "2", *args)
    assert done.returncode == 2, done.stderr
    _assert_one_line_error(done.stderr, expected)


def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("tokens = [1]\nflavour = 'x'\n")
    done = commbench_here("sweep", "--nproc", "2", "--config", str(config))
    assert done.returncode == 2
    _assert_one_line_error(done.stderr, "unknown key 'flavour'")


@pytest.mark.parametrize(("text", "expected"), CONFIG_FILES)
def test_every_kind_of_bad_config_file_exits_2(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    out = str(tmp_path / "run")
    done = commbench_here("sweep", "--nproc", "2", "--config", str(config), "--out", out)
    assert done.returncode == 2, done.stderr
    _assert_one_line_error(done.stderr, expected)
    assert not Path(out).exists()  # refused before anything is written, by the workers too


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.csv").write_text("precious\n")
    done = commbench_here(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)), "--out", str(out)
    )
    assert done.returncode == 2
    _assert_one_line_error(done.stderr, "already exists and is not empty")
    assert (out / "results.csv").read_text() == "precious\n"


def test_bad_input_under_torchrun_ends_every_rank(tmp_path: Path) -> None:
    """Every worker validates before any collective: all exit 2, none waits for another."""
    done = torchrun(2, "sweep", "--tp", "3", timeout=120)
    assert done.returncode != 0  # torchrun reports a failed worker with its own exit code
    errors = [line for line in done.stderr.splitlines() if line.startswith("commbench: error:")]
    assert errors and all("tp: 3 does not divide the world size 2" in e for e in errors)
    assert "exitcode  : 2" in done.stderr


def test_srun_without_a_rendezvous_address_says_how(tmp_path: Path) -> None:
    """srun sets SLURM_PROCID and friends but no MASTER_ADDR: the recipe, not a traceback."""
    slurm = {"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0"}
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MASTER_", "SLURM_"))}
    done = subprocess.run(
        [sys.executable, "-m", "commbench", "sweep", "--config", str(tiny_config(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**environ, **slurm, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    _assert_one_line_error(done.stderr, "MASTER_ADDR: not set; under srun export MASTER_ADDR")


def _exactly_one_line(done: subprocess.CompletedProcess, expected: str) -> None:
    """Exit 2 and nothing on stderr but the one line: not twice, not glued to another
    rank's copy, no launcher log."""
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"commbench: error: {expected}"), done.stderr


def test_a_wrongly_typed_config_value_is_refused_even_when_a_flag_sets_it(
    tmp_path: Path,
) -> None:
    config = tmp_path / "sweep.toml"
    config.write_text('tokens = "many"\n')
    done = commbench("sweep", "--nproc", "2", "--config", str(config), "--tokens", "8", timeout=60)
    _exactly_one_line(done, f"{config}: tokens: Input should be a valid list (got 'many')")


PROBE = """
import sys
from commbench.cli import main
sys.argv = ['commbench', *sys.argv[1:]]
try:
    main()
finally:
    print('torch imported:', 'torch' in sys.modules)
"""


@pytest.mark.parametrize("out", ["/proc/x", "/proc/x/y/run"])
def test_an_unwritable_out_is_refused_before_any_worker_starts(tmp_path: Path, out: str) -> None:
    """Root passes os.access on /proc: only trying to create it tells. Refused before
    torch is even imported, so no worker (nor the launcher) ever started."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "sweep", "--nproc", "2", "--out", out],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    _exactly_one_line(done, f"out: '{out}' cannot be created")
    assert done.stdout == "torch imported: False\n"
    assert not Path(out).exists()


def test_what_every_worker_refuses_is_said_once(tmp_path: Path) -> None:
    """A refusal only the workers can make (the NCCL library a worker must have loaded,
    which the launcher passes on): every rank refuses, the user reads it once, without the
    elastic launcher's SIGTERM and exit-code log lines."""
    done = commbench(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)),
        "--out", str(tmp_path / "run"),
        env={"COMMBENCH_NCCL_LIB": "/nonexistent/libnccl.so.2"},
    )  # fmt: skip
    _exactly_one_line(done, "nccl-lib: ")
    assert "SIGTERM" not in done.stderr and "exitcode" not in done.stderr


LAUNCH = """
import sys
from commbench.sweep.launch import launch_local
sys.exit(launch_local(2, ['-c', sys.argv[1]]))
"""


@pytest.mark.parametrize(
    ("worker", "expected"),
    [
        ("import sys; print('commbench: error: x: bad', file=sys.stderr); sys.exit(2)",
         (2, "commbench: error: x: bad\n")),
        ("import os, signal, time\nif os.environ['RANK'] == '1':\n"
         "    os.kill(os.getpid(), signal.SIGKILL)\ntime.sleep(60)",
         (3, "commbench: error: rank 1 ended with SIGKILL\n")),
    ],
)  # fmt: skip
def test_the_launcher_relays_each_line_once_and_names_a_silent_death(
    worker: str, expected: tuple[int, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, worker],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert (done.returncode, done.stderr) == expected


BASELINE_RUN = SCHEMA_1_RUNS / "run-1"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["report", "/nonexistent/run"], "/nonexistent/run: not a run directory"),
        (["gate", "/nonexistent/a", "/nonexistent/b"], "/nonexistent/a: not a run directory"),
        (["compare", "/nonexistent/a"], "runs: need at least two run directories to compare"),
        (["plot", "/nonexistent/a"], "/nonexistent/a: not a run directory"),
        (["export", str(BASELINE_RUN), "--format", "csv"], "format: must be one of bencher"),
        (["env", "--bogus"], "No such option: --bogus"),
        (["presets", "extra"], "Got unexpected extra argument(s) (extra)"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_every_command_refuses_bad_input_in_one_line_end_to_end(
    args: list[str], expected: str
) -> None:
    """Each command's refusal from a fresh interpreter: the other tests of bad input run
    the commands in this process (the sweep's, under launchers, are above)."""
    done = commbench(*args, timeout=120)
    _exactly_one_line(done, expected)
    assert done.stdout == ""


# --- every output path, checked before any work, by one rule ------------------------------

OTHER_RUN = SCHEMA_1_RUNS / "run-2"
VERDICTS = (0, 1, 3, 4)  # what a command that read its runs may answer: never 2
RUNS = [str(BASELINE_RUN), str(OTHER_RUN)]
# (command line up to the output flag, the flag, what the output is: "file" or "dir")
OUTPUTS = [
    (["gate", *RUNS, "--allow-mismatch"], "--json", "json"),
    (["gate", *RUNS, "--allow-mismatch"], "--markdown", "markdown"),
    (["gate", *RUNS, "--allow-mismatch"], "--junit", "junit"),
    (["compare", *RUNS], "--csv", "csv"),
    (["compare", *RUNS], "--markdown", "markdown"),
    (["report", RUNS[0]], "--markdown", "markdown"),
    (["export", RUNS[0], "--format", "github"], "--out", "out"),
]


@pytest.mark.parametrize(("args", "flag", "name"), OUTPUTS, ids=lambda v: v[0] if v else None)
@pytest.mark.parametrize("where", ["nodir/x", "file/x", "dir"])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(
    tmp_path: Path, args: list[str], flag: str, name: str, where: str
) -> None:
    """A missing folder, a file where the folder should be, a directory where the file
    should be: one line naming the flag and the path, exit 2 (never 1, which CI reads as a
    regression), nothing written. The same command into a folder that exists writes."""
    (tmp_path / "file").write_text("mine\n")
    (tmp_path / "dir").mkdir()
    bad = tmp_path / where
    done = commbench_here(*args, flag, str(bad))
    why = {"nodir/x": "folder '.*nodir' does not exist", "file/x": "'.*file' is not a folder",
           "dir": "it is a directory"}[where]  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert re.match(f"commbench: error: {name}: '{re.escape(str(bad))}' cannot be written: {why}",
                    done.stderr), done.stderr  # fmt: skip
    assert done.stdout == "" and not (tmp_path / "nodir").exists()
    assert (tmp_path / "file").read_text() == "mine\n" and not any((tmp_path / "dir").iterdir())

    good = tmp_path / "dir" / "written"
    done = commbench_here(*args, flag, str(good))
    assert done.returncode in VERDICTS, done.stderr  # one baseline run: the gate may say 4
    assert good.stat().st_size > 0


def test_the_step_summary_of_a_ci_job_is_checked_like_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "nodir" / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    done = commbench_here("gate", *RUNS, "--allow-mismatch")
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr == (
        f"commbench: error: GITHUB_STEP_SUMMARY: '{summary}' cannot be written:"
        f" folder '{summary.parent}' does not exist\n"
    )
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    done = commbench_here("gate", *RUNS, "--allow-mismatch")
    assert done.returncode in VERDICTS, done.stderr
    assert summary.read_text().startswith("earlier step\n") and len(summary.read_text()) > 20


def test_a_directory_output_is_created_with_its_parents_unless_it_cannot_be(
    tmp_path: Path,
) -> None:
    """plot --out and sweep --out name directories: made, parents included (the rule for
    every directory output); a file in the way is refused in one line before any work."""
    (tmp_path / "file").write_text("mine\n")
    for args in (["plot", RUNS[0]], ["sweep", "--nproc", "2"]):
        done = commbench_here(*args, "--out", str(tmp_path / "file" / "x"))
        assert done.returncode == 2, done.stderr
        assert done.stderr == (
            f"commbench: error: out: '{tmp_path / 'file' / 'x'}' cannot be created:"
            f" '{tmp_path / 'file'}' is a file\n"
        )
    made = tmp_path / "plots" / "nested"
    done = commbench_here("plot", RUNS[0], "--out", str(made))
    assert done.returncode == 0, done.stderr
    assert sorted(made.iterdir()) and done.stdout.startswith(str(made))


def test_an_ab_report_that_cannot_be_written_is_refused_before_any_launch(
    tmp_path: Path,
) -> None:
    """The A/B report is written after every launch: a typo in its path is said first."""
    report = tmp_path / "nodir" / "ab.md"
    done = commbench_here(
        "ab", "--nproc", "2", "--arm", "base", "--arm", "ring:NCCL_ALGO=Ring",
        "--out", str(tmp_path / "ab"), "--markdown", str(report),
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr == (
        f"commbench: error: markdown: '{report}' cannot be written:"
        f" folder '{report.parent}' does not exist\n"
    )
    assert not (tmp_path / "ab").exists()
