"""Commands that only read results never import torch (2 s here, far more with CUDA), and
each imports the statistics or plotting library only if it uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import SCHEMA_1_RUNS
from support.runfixtures import key, samples_around, write_run

BASELINE = SCHEMA_1_RUNS / "run-1"  # a real run of schema 1

# commbench.config.flags builds the config model's flags: only the sweep needs them
HEAVY = ("torch", "scipy", "matplotlib", "commbench.config.flags")

PROBE = f"""
import sys
from commbench.cli import main
sys.argv = ['commbench', *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    print('exit', exit.code)
print('imported:', sorted(name for name in {HEAVY!r} if name in sys.modules))
"""


@pytest.mark.parametrize(
    ("command", "needs"),
    [
        (["--help"], []),
        (["sweep", "--help"], ["commbench.config.flags"]),
        (["presets"], []),
        (["configs"], []),
        (["report", "{a}"], []),
        (["report", "{a}", "--markdown", "{a}/report.md"], []),
        (["export", "{a}", "--format", "bencher"], []),
        (["export", "{a}", "--format", "github"], []),
        (["gate", "{a}", "{b}", "--allow-insufficient"], ["scipy"]),  # one baseline: blind
        (["compare", "{a}", "{b}"], ["scipy"]),
        (["plot", "{a}"], ["matplotlib"]),
        (["runs", "{a}"], []),
        (["report", "{a}", "--json"], []),
        (["compare", "{a}", "{b}", "--json"], ["scipy"]),
        (["sweep", "--dry-run", "--nproc", "2"], ["commbench.config.flags", "torch"]),
        (["--version"], []),
    ],
)
def test_reading_commands_import_only_what_they_use(
    tmp_path: Path, command: list[str], needs: list[str]
) -> None:
    def rows(level: float) -> list:
        return [(key(variant=v, tokens=t), samples_around(level, 8)) for v in ("list", "tensor")
                for t in (8, 64)]  # fmt: skip

    # two runs, not one twice: the gate refuses to judge a run against itself
    paths = {"a": write_run(tmp_path / "a", rows(100)), "b": write_run(tmp_path / "b", rows(101))}
    args = [part.format(**paths) for part in command]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert "exit 0" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"imported: {needs}")


def test_the_python_api_reads_runs_without_torch(tmp_path: Path) -> None:
    """`commbench.load_run` in a notebook: pandas only, whatever schema wrote the run."""
    rows = [(key(variant=v), samples_around(100, 8)) for v in ("list", "tensor")]
    paths = [write_run(tmp_path / "a", rows), BASELINE]
    probe = f"""
import sys
import commbench
run = commbench.load_run({str(paths[0])!r})
both = commbench.load_runs({[str(p) for p in paths]!r})
print(len(run.results), len(both.results), sorted(both.meta))
print('imported:', sorted(name for name in {HEAVY!r} if name in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["2 32 ['a', 'baseline-1']", "imported: []"]


def test_a_sweeps_rank_imports_neither_scipy_nor_matplotlib(tmp_path: Path) -> None:
    """Every rank of every sweep would pay them at start-up (scipy.stats takes about as
    long as torch here): a real sweep, this interpreter rank 0 of a world of 1."""
    from support.cli import tiny_config
    from support.distworld import free_port

    world = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}
    address = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    sweep = ["sweep", "--config", str(tiny_config(tmp_path)), "--out", str(tmp_path / "run")]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *sweep, "--tokens", "1", "--dtypes", "float32"],
        capture_output=True,
        text=True,
        env={**os.environ, **world, **address},
    )
    assert "exit 0" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().endswith("imported: ['commbench.config.flags', 'torch']")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--collectives", "allgather"], "commbench: error: --collectives: Input should be"),
        (["--variants", "lst"], "commbench: error: --variants: Input should be"),
        (["--tokens", "1,x"], "commbench: error: --tokens: Input should be a valid integer"),
    ],
)
def test_a_bad_sweep_flag_fails_before_torch_is_imported(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    """A typo is said at once, by the launcher, whatever the flag: the names and the
    variants of the collectives are known without torch (commbench.catalogue)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "sweep", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")},
    )
    assert done.stderr.startswith(expected) and done.stderr.count("\n") == 1, done.stderr
    assert done.stdout.splitlines() == ["exit 2", "imported: ['commbench.config.flags']"]
    assert list(tmp_path.iterdir()) == []  # nothing written
