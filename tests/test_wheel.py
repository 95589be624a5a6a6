"""A wheel built from this tree works on its own: it holds the configs, installs into a fresh
venv, and from a directory outside the tree `commbench presets` and a tiny sweep run from it
(not from this checkout)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from support.paths import PACKAGE, REPO

import commbench

# What the build reads: the rest of the tree (tests, results, benchmarks) is not shipped.
SOURCES = ("pyproject.toml", "README.md")
PRESETS = {"deepseek-v3", "qwen3-235b-a22b", "llama-3.1-70b", "gpt-oss-120b", "odd-vocab"}


# The environment, less this checkout on the path (pip would take it for commbench installed)
# and a launcher's variables.
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RANK", "WORLD_SIZE")}


def run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the tree (the build leaves build/ and egg-info behind it)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        shutil.copy(REPO / name, source / name)
    shutil.copytree(PACKAGE, source / "commbench", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", wheels, source, cwd=tmp_path)  # fmt: skip
    (wheel,) = wheels.glob("commbench-*.whl")
    return wheel


def venv_with(wheel: Path, where: Path) -> Path:
    """A fresh venv with the wheel installed, that then sees this environment's packages
    (torch and the rest, no download) but not this checkout: the outer site-packages as
    plain path entries, so an editable install of commbench there (its own .pth) is not
    picked up. Installed first, so pip does not find the outer commbench installed."""
    run(sys.executable, "-m", "venv", "--system-site-packages", where, cwd=where.parent)
    python = where / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=where.parent)
    inner = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                cwd=where.parent).strip()  # fmt: skip
    outer = [*site.getsitepackages(), sysconfig.get_path("purelib")]
    Path(inner, "outer-environment.pth").write_text("\n".join(dict.fromkeys(outer)) + "\n")
    return python


def test_the_wheel_installs_and_runs_outside_the_tree(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).stem for n in names if n.startswith("commbench/configs/")}
    assert {"default", "ci", *PRESETS} <= shipped
    assert "commbench/analysis/gate/priors.toml" in names  # the gate's measured priors
    assert "commbench/ab/nccl_variables.txt" in names  # the NCCL_* names ab knows
    assert wheel.name.startswith(f"commbench-{commbench.__version__}-")

    python = venv_with(wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = tmp_path / "venv" / "bin" / "commbench"

    found = run(python, "-c", "import commbench; print(commbench.__file__)", cwd=elsewhere)
    assert Path(found.strip()).is_relative_to(tmp_path / "venv")  # the wheel's, not the tree's

    priors = "from commbench.analysis.gate.priors import shipped_priors as p; print(*p())"
    assert run(python, "-c", priors, cwd=elsewhere).split() == ["nccl", "gloo"]
    known = "from commbench.ab.arms import nccl_variables as v; print('NCCL_ALGO' in v())"
    assert run(python, "-c", known, cwd=elsewhere).strip() == "True"

    listed = run(script, "presets", cwd=elsewhere)
    assert all(name in listed for name in PRESETS), listed
    shipped = run(script, "configs", cwd=elsewhere)
    assert "ci" in shipped and "default" in shipped
    planned = run(script, "sweep", "--config", "ci", "--dry-run", "--nproc", "4", cwd=elsewhere)
    assert "30 points on 4 ranks" in planned  # the shipped CI config, by name

    out = elsewhere / "run"
    run(script, "sweep", "--nproc", "2", "--tokens", "8", "--hidden", "64", "--tp", "2",
        "--dtypes", "float32", "--collectives", "all_gather", "--max-samples", "4",
        "--out", out, cwd=elsewhere)  # fmt: skip
    meta = json.loads((out / "meta.json").read_text())
    assert meta["versions"]["commbench"] == commbench.__version__
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    measured = {(row["variant"], row["check"]) for row in rows}
    assert measured == {("list", "pass"), ("tensor", "pass")}
    assert {p.name for p in elsewhere.iterdir()} == {"run"}  # nothing written beside the run
