"""gpu-check's --nccl-lib check: a sweep told to run on a given libnccl must run on it.

Without a second NCCL build on the machine (NCCL_LIB), the library torch binds is copied to
another path and that copy is given: NCCL must then report itself from the copy's path. That
proves the binding (`sweep --nccl-lib` preloads the file given, and commbench's identity
check and NCCL_DEBUG=VERSION agree it is the one running), not that another version runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from commbench.env.nccl import bound_nccl
from commbench.errors import UsageError
from commbench.gpucheck import sweeps
from commbench.gpucheck.ranks import Runner
from commbench.gpucheck.verdict import FAIL, NOT_RUN, Check, judged
from commbench.rundir.reader import read_meta

NAME = "--nccl-lib"
VERSION = "import sys; from commbench.env.nccl import library_version as v; print(v(sys.argv[1]))"


def copy_library(source: str, into: Path) -> Path:
    """`source` copied to `into`/libnccl.so.2 (the name a preload needs)."""
    into.mkdir(parents=True, exist_ok=True)
    copy = into / "libnccl.so.2"
    shutil.copy2(source, copy)
    return copy


def check_nccl_lib(run: Runner, lib: str | None, limit: float) -> Check:
    what = "the given library"
    if lib is None:
        bound = bound_nccl()
        if bound is None:
            why = "this torch binds no libnccl to copy (static NCCL?): give NCCL_LIB=..."
            return Check(NAME, NOT_RUN, why)
        lib, what = str(copy_library(bound.path, run.next("nccl-copy"))), "a copy of the bound one"
    version = subprocess.run(
        [sys.executable, "-c", VERSION, lib], env=run.env, capture_output=True, text=True
    )
    wanted = version.stdout.strip()
    if version.returncode != 0 or not wanted:
        return Check(NAME, FAIL, f"{lib} reports no version: {version.stderr.strip()[-300:]}")
    out, log = run.next("run"), run.next("nccl-lib").with_suffix(".log")
    command = [
        sys.executable,
        "-m",
        "commbench",
        "sweep",
        "--nproc",
        "1",
        "--nccl-lib",
        lib,
        "--config",
        str(run.config(sweeps.tiny())),
        "--out",
        str(out),
    ]
    with log.open("w") as sink:
        try:
            code = subprocess.run(
                command,
                env={**run.env, "NCCL_DEBUG": "VERSION"},
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=limit,
            ).returncode
        except subprocess.TimeoutExpired:
            code = None
    if code != 0:
        return Check(NAME, FAIL, f"exit {code}; log {log}")
    try:
        versions = read_meta(out).versions
    except UsageError as err:
        return Check(NAME, FAIL, f"{err}; log {log}")
    said = f"NCCL version {wanted}" in log.read_text(errors="replace")
    same = versions.nccl_path == os.path.realpath(lib) and versions.nccl_runtime == wanted
    measured = (
        f"{what}, {wanted} at {lib}: meta.json {versions.nccl_runtime} from"
        f" {versions.nccl_path}; NCCL_DEBUG=VERSION said {'so' if said else 'otherwise'}"
    )
    return judged(NAME, measured if same and said else f"{measured}; log {log}", same and said)
