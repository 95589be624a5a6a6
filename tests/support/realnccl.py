"""Real libnccl builds, taken from nvidia-nccl-cu13 wheels by `make test-cuda-build`.

COMMBENCH_TEST_NCCL_DIR holds VERSION/libnccl.so.2. Tests that need them, and the CUDA
build of torch they belong with, skip in a plain local run that lacks them; under CI
(CI set) they fail instead: CI skips nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from commbench.env.nccl import built_version

NCCL_DIR_VAR = "COMMBENCH_TEST_NCCL_DIR"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def unavailable(reason: str) -> None:
    """Skip locally; fail under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI skips nothing: run `make test-cuda-build`)")
    pytest.skip(reason)


def real_libraries() -> dict[str, Path]:
    """{"older", "equal", "newer"}: real libnccl builds around the one torch was built with."""
    built = built_version()
    if built is None:
        unavailable("needs the CUDA build of torch (its libtorch_cuda links libnccl)")
    directory = os.environ.get(NCCL_DIR_VAR)
    if not directory:
        unavailable(f"{NCCL_DIR_VAR} is not set: no real libnccl builds")
    found = {path.parent.name: path for path in Path(directory).glob("*/libnccl.so.2")}
    by_order = {
        "older": [v for v in found if _version_key(v) < _version_key(built)],
        "equal": [v for v in found if v == built],
        "newer": [v for v in found if _version_key(v) > _version_key(built)],
    }
    lacking = [name for name, versions in by_order.items() if not versions]
    if lacking:
        unavailable(f"{directory} has no libnccl {', '.join(lacking)} than/as torch's {built}")
    return {name: found[max(versions, key=_version_key)] for name, versions in by_order.items()}
