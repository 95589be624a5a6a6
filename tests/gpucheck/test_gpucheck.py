"""`make gpu-check` on a machine without a GPU, its start on a python that lacks modules, its
statuses, time limits, tables and kept evidence, on CPU."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import HOOKS, REPO

from commbench.config.settings import load_config
from commbench.errors import UsageError
from commbench.gpucheck import sweeps
from commbench.gpucheck.catalogue import ABOUT, LIMITS, WHOLE_RUN_S, checks_of
from commbench.gpucheck.checks import kept
from commbench.gpucheck.preflight import CARRY, carry_line, distributions
from commbench.gpucheck.ranks import Runner, rank_env, shared_env
from commbench.gpucheck.run import render, run_steps, steps, versions_line, work_dir
from commbench.gpucheck.verdict import (
    EXIT_CANNOT_RUN,
    FAIL,
    NA,
    NO_GPU,
    NOT_RUN,
    PASS,
    Check,
    exit_code,
)
from commbench.sweep.backend import SHARED_GPU_VAR
from commbench.sweep.plan import build_plan

PYDANTIC_WHEELS = "pydantic pydantic-core annotated-types typing-inspection typing-extensions"


def test_without_a_gpu_it_says_so_in_one_line_and_fails() -> None:
    """Through the Makefile target, which must not set anything up (no venv, no `setup`)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "gpu-check", f"PYTHON={sys.executable}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert NO_GPU in done.stderr.splitlines()  # then make's own "Error 2" line
    assert "Traceback" not in done.stderr
    direct = subprocess.run(
        [sys.executable, "-m", "commbench.gpucheck"], cwd=REPO, capture_output=True, text=True
    )
    assert (direct.returncode, direct.stderr.strip(), direct.stdout) == (
        EXIT_CANNOT_RUN,
        NO_GPU,
        "",
    )


def test_the_makefile_target_does_not_depend_on_setup_and_passes_keep() -> None:
    plan = subprocess.run(
        ["make", "-n", "--no-print-directory", "gpu-check", "KEEP=evidence", "NCCL_LIB=lib.so"],
        cwd=REPO, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "venv" not in plan and "pip" not in plan and "commbench.gpucheck" in plan
    assert "--keep evidence" in plan and "--nccl-lib lib.so" in plan


def gpu_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "commbench.gpucheck"], cwd=REPO, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip


def test_a_missing_module_is_named_in_one_line_with_how_to_carry_it() -> None:
    """As on a GPU image without pydantic (its import blocked): one line, exit 2."""
    done = gpu_check(
        {"PYTHONPATH": f"{HOOKS}:{REPO}", "COMMBENCH_TEST_WITHOUT": "pydantic,scipy,click"}
    )
    assert done.returncode == EXIT_CANNOT_RUN
    assert done.stdout == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert line.startswith("gpu-check: missing module(s) pydantic for Python")  # scipy: not needed
    assert f"--python-version {version}" in line and f"-d wheels/ {PYDANTIC_WHEELS}`" in line
    assert f"pip install --no-index --find-links wheels/ {PYDANTIC_WHEELS}`" in line


def test_without_scipy_or_click_it_goes_on_to_look_for_a_gpu() -> None:
    """Its sweeps do not import scipy, and typer brings its own click."""
    done = gpu_check({"PYTHONPATH": f"{HOOKS}:{REPO}", "COMMBENCH_TEST_WITHOUT": "scipy,click"})
    assert (done.returncode, done.stderr.strip()) == (EXIT_CANNOT_RUN, NO_GPU)


def test_a_module_there_but_broken_is_one_line(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "pydantic.py").write_text('raise ImportError("its compiled core is missing")\n')
    done = gpu_check({"PYTHONPATH": f"{shim}:{REPO}"})
    assert done.returncode == EXIT_CANNOT_RUN and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "gpu-check: a Python module is installed but does not import: its compiled core is"
        f" missing (Python {sys.version_info.major}.{sys.version_info.minor}, {sys.executable})"
    ]


def test_the_carry_commands_are_for_the_devices_python() -> None:
    line = carry_line(["pydantic"], (3, 12))
    assert "--only-binary=:all: --python-version 3.12 --platform manylinux2014_" in line
    assert f"python3.12 -m pip install --no-index --find-links wheels/ {PYDANTIC_WHEELS}" in line
    assert distributions(["pydantic", "typer"]) == [*CARRY["pydantic"], "typer"]


def test_only_a_failure_fails_and_something_must_have_passed() -> None:
    passed, failed = Check("a", PASS, "x"), Check("b", FAIL, "y")
    not_here, not_run = Check("c", NA, "one GPU"), Check("d", NOT_RUN, "no library")
    assert exit_code([passed, not_here, not_run]) == 0
    assert exit_code([passed, failed, not_here]) == 1
    assert exit_code([not_here, not_run]) == 1  # nothing was verified
    assert exit_code([]) == 1


def test_the_steps_time_limits_add_up_to_under_eight_minutes() -> None:
    assert sum(LIMITS.values()) <= WHOLE_RUN_S < 8 * 60
    assert {about.step for about in ABOUT.values()} == set(LIMITS)  # every step judged


def _passes(run: Runner, limit: float) -> list[Check]:
    return [Check("exact rows", PASS, f"within {limit} s"), Check("temp_mem_bytes", NA, "cpu")]


def _breaks(run: Runner, limit: float) -> list[Check]:
    raise ValueError("a bug in a check")


def test_a_step_that_breaks_fails_its_checks_and_one_past_the_whole_limit_does_not_start(
    tmp_path: Path,
) -> None:
    limits = {"exact": 5, "out of memory": 5, "graph replay": 20}
    plan = [("exact", _passes), ("out of memory", _breaks), ("graph replay", _passes)]
    said: list[str] = []
    checks = run_steps(plan, Runner(tmp_path, REPO), said.append, whole_s=10, limits=limits)
    assert [(c.name, c.status) for c in checks] == [
        ("exact rows", PASS),
        ("temp_mem_bytes", NA),
        *((name, FAIL) for name in checks_of("out of memory")),
        *((name, NOT_RUN) for name in checks_of("graph replay")),
    ]
    assert "within 5 s" in checks[0].measured and len(said) == len(checks)
    broke = checks[2].measured  # the whole traceback kept, its path named
    log = Path(broke.split("; log ")[1])
    assert "ValueError: a bug in a check" in broke and "a bug in a check" in log.read_text()
    assert "10 s would be passed" in checks[-1].measured


def test_the_table_says_what_each_check_proves_and_cannot_on_this_many_gpus() -> None:
    checks = [Check("first --cuda-graph sample", NA, "two ranks on one GPU time each other")]
    one, eight = render(checks, 1), render(checks, 8)
    assert "cannot on 1 GPU(s)" in one and "cannot on 8 GPU(s)" in eight
    about = ABOUT["first --cuda-graph sample"]
    assert about.proves in one and about.one_gpu_cannot in one
    assert about.one_gpu_cannot not in eight
    assert f"{LIMITS['cuda-graph sweep']} s" in one.splitlines()[2]


def test_a_kept_directory_must_be_new_or_empty(tmp_path: Path) -> None:
    assert work_dir(str(tmp_path / "new")) == tmp_path / "new"
    (tmp_path / "new" / "run-1").mkdir()
    with pytest.raises(UsageError, match=r"keep: .* is not empty"):
        work_dir(str(tmp_path / "new"))


@pytest.mark.parametrize("ranks", [1, 2, 3, 8])
def test_every_checks_sweep_is_a_valid_plan_on_every_world(tmp_path: Path, ranks: int) -> None:
    """On NCCL on paper: the configs and plans need no GPU. The out-of-memory point's
    output alone (256 GiB) is more than any GPU holds; with its input, more again."""
    bodies = {
        "exact": sweeps.exact(ranks, "nccl"),
        "huge": sweeps.huge(ranks, "nccl"),
        "replayed": sweeps.replayed(ranks, "nccl", True),
        "graphed": sweeps.graphed(ranks, True),
        "gpu_bound": sweeps.gpu_bound(ranks),
        "tiny": sweeps.tiny(),
    }
    if ranks == 2:
        bodies["long_running"] = sweeps.long_running("nccl")
    plans = {}
    for name, body in bodies.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(body)
        plans[name] = build_plan(load_config(path), ranks)
    assert {p.collective for p in plans["exact"]} == set(sweeps.EVERY_COLLECTIVE)
    # docs/gpu.md sizes the exact step on these counts (270 points on two ranks)
    assert len(plans["exact"]) == {1: 135, 2: 270, 4: 405, 8: 540}.get(ranks, len(plans["exact"]))
    assert {p.tp for p in plans["exact"]} == set(sweeps.splits(ranks))
    fits, huge = sorted(plans["huge"], key=lambda point: point.tokens)
    assert huge.tokens * huge.hidden * huge.element_size == 256 * 2**30
    assert fits.tokens * fits.hidden * fits.element_size == 32 * 2**20
    assert sweeps.LARGE_BYTES == 128 * 2**20


def test_the_docs_limits_table_is_the_code_s() -> None:
    page = (REPO / "docs" / "gpu.md").read_text()
    rows = re.findall(r"^\| ([a-z -]+) \| (\d+) s \| (.+) \|$", page, re.MULTILINE)
    assert {step: int(limit) for step, limit, _ in rows} == LIMITS
    for step, _, names in rows:
        assert names.split(", ") == checks_of(step)
    assert f"the whole run's limit,\n{WHOLE_RUN_S} s" in page


def test_the_versions_line_names_what_was_found() -> None:
    line = versions_line()
    assert line.startswith("gpu-check: Python ") and "\n" not in line
    for found in ("torch ", "CUDA ", "NCCL built ", "bound ", "typer ", "click ", "driver "):
        assert found in line


@pytest.mark.parametrize("gpus", [1, 2, 8])
def test_every_step_with_a_limit_is_run_in_the_tables_order(gpus: int) -> None:
    assert [step for step, _ in steps(gpus, None)] == list(LIMITS)


def test_ranks_sharing_one_gpu_all_see_the_first_and_ask_the_world_to_share(
    tmp_path: Path,
) -> None:
    run = Runner(tmp_path, REPO)
    assert run.env["PYTHONUNBUFFERED"] == "1"
    base = {**run.env, "CUDA_VISIBLE_DEVICES": "2,3"}
    for rank in range(2):
        env = shared_env(rank_env(base, rank, 2, 29500))
        assert (env["RANK"], env["CUDA_VISIBLE_DEVICES"]) == (str(rank), "2")  # the first
        assert env[SHARED_GPU_VAR] == "1" and "NCCL_HOSTID" not in env


def test_a_failed_check_names_where_its_evidence_is(tmp_path: Path) -> None:
    failed = kept(Check("exact rows", FAIL, "2 rows: 1 pass, 1 fail"), tmp_path / "run-1")
    assert failed.measured == f"2 rows: 1 pass, 1 fail; kept in {tmp_path / 'run-1'}"
    assert kept(Check("exact rows", PASS, "2 rows"), tmp_path).measured == "2 rows"
