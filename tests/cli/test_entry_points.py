"""Every way in (`python -m commbench`, the `commbench` script, each rank of a launch) on a
Python that lacks a module or has one broken, and a bug's own exit code: real processes,
the missing module blocked by an import hook (tests/support/hooks), the bug a crash
planted in a collective."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from support.cli import commbench, srun_like, tiny_config
from support.paths import HOOKS, REPO

from commbench.errors import ExitCode

HOOKED = os.pathsep.join([str(HOOKS), str(REPO)])


def without(*modules: str) -> dict[str, str]:
    return {"PYTHONPATH": HOOKED, "COMMBENCH_TEST_WITHOUT": ",".join(modules)}


def assert_one_line(done: subprocess.CompletedProcess, *said: str) -> None:
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    for words in said:
        assert words in line, line


def test_a_missing_module_is_one_line_and_exit_2_from_python_m(tmp_path: Path) -> None:
    done = commbench("report", str(tmp_path), env=without("pydantic"))
    assert_one_line(done, "missing Python module(s) pydantic", f"{sys.executable} -m pip install")


def test_the_console_script_says_the_same(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "commbench"
    done = subprocess.run(
        [str(script), "gate", "--help"], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, **without("typer", "pandas")},
    )  # fmt: skip
    assert_one_line(done, "missing Python module(s) typer, pandas")


def test_a_module_there_but_broken_is_one_line_and_exit_2(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "pydantic.py").write_text('raise ImportError("its compiled core is missing")\n')
    done = commbench("runs", str(tmp_path), env={"PYTHONPATH": f"{shim}{os.pathsep}{REPO}"})
    assert_one_line(done, "installed but does not import: its compiled core is missing")


def test_every_rank_of_a_launch_says_it(tmp_path: Path) -> None:
    args = ["sweep", "--config", str(tiny_config(tmp_path)), "--out", str(tmp_path / "run")]
    procs = srun_like(2, args, tmp_path, env=without("pydantic"))
    for rank, proc in enumerate(procs):
        assert proc.wait(timeout=120) == ExitCode.USAGE
        said = (tmp_path / f"rank{rank}.err").read_text()
        assert said.count("\n") == 1 and "missing Python module(s) pydantic" in said
    assert not (tmp_path / "run").exists()


def test_a_bug_exits_70_with_its_traceback_and_keeps_what_was_measured(tmp_path: Path) -> None:
    """A collective that raises what no fault explains (not a peer's death, not memory):
    every rank prints the traceback and one line, and ends with 70, which no check uses;
    the points finished before it stay on disk."""
    run = tmp_path / "run"
    planted = {"PYTHONPATH": HOOKED, "COMMBENCH_TEST_CRASH": "all_reduce@60"}
    done = commbench(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)), "--out", str(run),
        env=planted,
    )  # fmt: skip
    assert done.returncode == ExitCode.INTERNAL == 70, done.stderr
    assert "Traceback" in done.stderr and "a planted crash (COMMBENCH_TEST_CRASH)" in done.stderr
    assert "commbench: internal error (a bug, please report it" in done.stderr
    assert len(pd.read_csv(run / "results.csv")) > 0
    stopped = json.loads((run / "meta.json").read_text())["stopped"]
    assert stopped["reason"].startswith("an internal error at ")
    assert stopped["reason"].endswith("(round 1): RuntimeError")
