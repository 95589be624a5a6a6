"""`env`, `sweep --nccl-lib`, LD_PRELOAD, `compare` and `--resume` against real libnccl builds.

The registry's CUDA build of torch (its libtorch_cuda links libnccl.so.2, the
nvidia-nccl-cu13 wheel's) and real libnccl builds older than, equal to and newer than the
one torch was built with (tests/support/realnccl.py). Both import and answer ncclGetVersion on a
machine without a GPU; the sweeps run on gloo. `make test-cuda-build` runs these.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest
from support.cli import commbench, tiny_config, torchrun
from support.realnccl import real_libraries

from commbench.env.nccl import built_version

pytestmark = pytest.mark.real_nccl

ONE_POINT = ("--collectives", "all_gather", "--tokens", "8", "--dtypes", "float32")


@pytest.fixture(scope="module")
def real() -> dict[str, Path]:
    return real_libraries()


def _version(path: Path) -> str:
    return path.parent.name  # VERSION/libnccl.so.2


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("commbench: error:")]


def test_env_reports_the_preloaded_library_not_the_first_mapped(real: dict[str, Path]) -> None:
    newer = real["newer"]
    done = commbench("env", "--json", env={"LD_PRELOAD": str(newer)}, timeout=300)
    assert done.returncode == 0, done.stderr
    nccl = json.loads(done.stdout)["nccl"]
    assert nccl["runtime"] == _version(newer) and Path(nccl["path"]).samefile(newer)
    assert nccl["built"] == built_version() and nccl["mismatch"] is True
    # torch's loader mapped its wheel's copy as well: on the record, bound by nothing
    assert len(nccl["mapped"]) == 2 and str(newer) in nccl["mapped"]


@pytest.fixture(scope="module")
def runs(real: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One-point gloo runs under torch's own NCCL version and under the newer one."""
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for name in ("equal", "newer"):
        out = root / name
        done = commbench(
            "sweep", "--nproc", "2", "--config", str(tiny_config(root)), *ONE_POINT,
            "--out", str(out), "--label", name, "--nccl-lib", str(real[name]), timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        made[name] = out
    return made


def test_sweep_measures_under_the_nccl_lib(real: dict[str, Path], runs: dict[str, Path]) -> None:
    for name, out in runs.items():
        meta = json.loads((out / "meta.json").read_text())
        versions = meta["versions"]
        assert versions["nccl_runtime"] == _version(real[name])
        assert Path(versions["nccl_path"]).samefile(real[name])
        assert str(real[name]) in versions["nccl_mapped"]
        assert meta["ranks_disagree"] == {}  # every rank bound the same library


def test_compare_shows_the_nccl_difference(real: dict[str, Path], runs: dict[str, Path]) -> None:
    done = commbench("compare", str(runs["equal"]), str(runs["newer"]), timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "nccl_runtime" in line]
    assert lines and _version(real["equal"]) in lines[0] and _version(real["newer"]) in lines[0]
    assert any("nccl_path" in line for line in done.stdout.splitlines())


def test_resume_compares_like_with_like(real: dict[str, Path], runs: dict[str, Path]) -> None:
    run = runs["newer"]
    done = commbench("sweep", "--resume", str(run), "--nccl-lib", str(real["newer"]), timeout=600)
    assert done.returncode == 0, done.stderr
    done = commbench("sweep", "--resume", str(run), timeout=300)  # without it: another NCCL
    assert done.returncode == 2
    errors = _errors(done.stderr)
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"commbench: error: resume: {str(run)!r}: the run was measured")
    assert f"nccl_runtime {_version(real['newer'])}, this is {built_version()}" in errors[0]


def _refusal(older: Path) -> str:
    return f"commbench: error: nccl-lib: '{older}' is NCCL {_version(older)}, which lacks"


def test_an_older_nccl_lib_is_refused_before_any_worker(
    real: dict[str, Path], tmp_path: Path
) -> None:
    older, out = real["older"], tmp_path / "run"
    done = commbench("sweep", "--nproc", "2", "--nccl-lib", str(older), "--out", str(out))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = _errors(done.stderr)
    assert len(errors) == 1 and errors[0].startswith(_refusal(older)), done.stderr
    torch_line = f"that torch {metadata.version('torch')} (its wheel ships NCCL {built_version()})"
    assert f"{torch_line} needs: " in errors[0]
    assert "ncclCommResume" in errors[0]  # the symbol `import torch` dies of
    assert not out.exists()


def test_torchrun_with_an_older_nccl_lib_every_rank_says_one_line(
    real: dict[str, Path], tmp_path: Path
) -> None:
    older = real["older"]
    done = torchrun(
        2, "sweep", "--nccl-lib", str(older), "--out", str(tmp_path / "run"),
        env={"LD_PRELOAD": ""}, timeout=600,
    )  # fmt: skip
    assert done.returncode != 0  # torchrun's own code; its summary has the ranks'
    assert "exitcode  : 2" in done.stderr
    # Each rank says it; once one has, the agent may end the others before they do.
    errors = _errors(done.stderr)
    assert errors and len(set(errors)) == 1, done.stderr
    assert errors[0].startswith(_refusal(older))
    assert "undefined symbol" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_ab_runs_arms_of_real_nccl_builds_and_an_nccl_setting(
    real: dict[str, Path], tmp_path: Path
) -> None:
    """`ab` with the arms docs/usage.md shows first: torch's own NCCL, a newer build, and
    an NCCL setting; every launch measured under its arm's library, nothing refused or
    called not comparable (the sweeps run on gloo: the figures mean nothing here)."""
    out = tmp_path / "exp"
    equal, newer = real["equal"], real["newer"]
    done = commbench(
        "ab", "--arm", f"equal:nccl-lib={equal}", "--arm", f"newer:nccl-lib={newer}",
        "--arm", f"ring:nccl-lib={equal},NCCL_ALGO=Ring", "--nproc", "2",
        "--config", str(tiny_config(tmp_path)), *ONE_POINT, "--out", str(out),
        "--min-pairs", "2", "--max-pairs", "2", "--band", "0.5", timeout=900,
    )  # fmt: skip
    assert done.returncode in (0, 1, 4), done.stdout + done.stderr
    state = json.loads((out / "experiment.json").read_text())
    libraries = {"equal": equal, "newer": newer, "ring": equal}
    assert [x["status"] for x in state["launches"]] == ["ok"] * 7  # a warm-up, 2 blocks of 3
    for launch in state["launches"]:
        meta = json.loads((out / launch["dir"] / "meta.json").read_text())
        assert Path(meta["versions"]["nccl_path"]).samefile(libraries[launch["arm"]])
    assert "differs: nccl_runtime" in done.stdout


def test_ab_refuses_an_older_nccl_lib_before_the_first_launch(
    real: dict[str, Path], tmp_path: Path
) -> None:
    older, out = real["older"], tmp_path / "exp"
    done = commbench(
        "ab", "--arm", "base", "--arm", f"old:nccl-lib={older}", "--nproc", "2", *ONE_POINT,
        "--out", str(out), timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = _errors(done.stderr)
    said = _refusal(older).replace("error: ", "error: arm old: ", 1)  # which arm, first
    assert len(errors) == 1 and errors[0].startswith(said), done.stderr
    assert not out.exists()
