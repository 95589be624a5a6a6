"""`commbench env` in a subprocess, as a user runs it: versions, NCCL built and loaded,
GPUs, and the allowlisted settings with secrets redacted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from support.cli import commbench

from commbench.env.nccl import built_version

SECRET = "s3cr3t-value-4217"
CPU_ONLY = not torch.cuda.is_available()
BUILT = built_version()  # None in a CPU build of torch: it links no NCCL


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NCCL_SECRET_TOKEN", SECRET)  # allowlisted prefix, secret name
    monkeypatch.setenv("MY_API_KEY", SECRET)  # not allowlisted at all
    monkeypatch.setenv("NCCL_DEBUG", "WARN")  # allowlisted, shown as is


def test_env_table(secret_env: None) -> None:
    done = commbench("env", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "torch" in done.stdout and torch.__version__ in done.stdout
    assert "NCCL_DEBUG" in done.stdout and "WARN" in done.stdout
    assert "NCCL_SECRET_TOKEN" in done.stdout and "<redacted>" in done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert "MY_API_KEY" not in done.stdout
    if CPU_ONLY:
        assert "CPU only: no GPU visible; sweeps use gloo" in done.stdout


FAKE_NVIDIA_SMI = """#!/bin/sh
# A driver's nvidia-smi on two GPUs, for its driver version only; anything else fails.
[ "$1" = "--query-gpu=driver_version" ] && printf '570.86.15\\n570.86.15\\n' && exit 0
exit 9
"""


def test_env_json(secret_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (tmp_path / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    done = commbench("env", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    expected = {"versions", "nccl", "gpus", "topology", "hostname", "env", "backend"}
    assert expected <= info.keys()
    versions = info["versions"]
    assert versions["torch"] == torch.__version__
    assert {"nccl_built", "nccl_runtime", "nccl_path", "cuda", "python"} <= versions.keys()
    assert info["nccl"].keys() == {"built", "runtime", "path", "mapped", "mismatch"}
    assert {"count", "names", "driver"} <= info["gpus"].keys()
    assert info["gpus"]["driver"] == "570.86.15"  # nvidia-smi's, both GPUs', said once
    assert info["topology"] is None  # nvidia-smi topo failed: nothing made up
    assert info["env"]["NCCL_SECRET_TOKEN"] == "<redacted>"
    assert info["env"]["NCCL_DEBUG"] == "WARN"
    assert "MY_API_KEY" not in info["env"]
    assert SECRET not in done.stdout
    if CPU_ONLY:
        assert info["backend"] == "gloo"
        assert info["gpus"] == {"count": 0, "names": [], "driver": "570.86.15"}
    nccl = info["nccl"]
    assert nccl["built"] == BUILT
    if BUILT is None:  # a CPU build of torch has no NCCL
        assert (nccl["runtime"], nccl["path"], nccl["mapped"]) == (None, None, [])
    else:  # the wheel's libnccl, bound and the only copy, unless LD_PRELOAD says otherwise
        assert nccl["path"] in nccl["mapped"]
        if "LD_PRELOAD" not in os.environ:
            assert nccl["runtime"] == BUILT and nccl["mapped"] == [nccl["path"]]
