"""gpu-check's --nccl-lib check: a sweep told to run on a given libnccl must run on it.

The library is the one given (NCCL_LIB), else a second libnccl the system's loader cache
lists (`ldconfig -p`) that has every symbol torch needs, else a copy of the library torch
binds at another path: NCCL must then report itself from that path. A copy proves the
binding (`sweep --nccl-lib` preloads the file given, and commbench's identity check and
NCCL_DEBUG=VERSION agree it is the one running), not that another version runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from commbench.env.nccl import bound_nccl
from commbench.env.preload import missing_symbols
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


def cached_libraries(listing: str) -> list[str]:
    """The libnccl.so* paths in `ldconfig -p`'s listing."""
    return [
        line.rpartition("=>")[2].strip()
        for line in listing.splitlines()
        if line.strip().startswith("libnccl.so") and "=>" in line
    ]


def system_nccl(bound: str) -> str | None:
    """A libnccl the loader's cache lists, other than `bound`, that defines every NCCL
    symbol torch needs (read from the files: loading a second libnccl.so.2 into this
    process would get the one already loaded)."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for path in cached_libraries(listing.stdout):
        try:
            other = not os.path.samefile(path, bound)
        except OSError:  # listed, but gone since the cache was made
            continue
        if other and not missing_symbols(Path(path)):
            return path
    return None


def check_nccl_lib(run: Runner, lib: str | None, limit: float) -> Check:
    what = "the given library"
    if lib is None:
        bound = bound_nccl()
        if bound is None:
            why = "this torch binds no libnccl to copy (static NCCL?): give NCCL_LIB=..."
            return Check(NAME, NOT_RUN, why)
        lib, what = system_nccl(bound.path), "the system's (ldconfig -p)"
        if lib is None:
            copy = copy_library(bound.path, run.next("nccl-copy"))
            lib, what = str(copy), "a copy of the bound one (no second libnccl in ldconfig -p)"
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
