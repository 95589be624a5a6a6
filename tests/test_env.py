"""`commbench env` and the NCCL version trap, against real compiled libraries.

No real NCCL here: small C libraries that export `ncclGetVersion` (and one that does not)
are compiled with gcc, loaded with ctypes, and preloaded into real subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import commbench, tiny_config, torchrun

from commbench.errors import UsageError
from commbench.nccl import (
    NCCL_LIB_VAR,
    NcclLibraryError,
    check_nccl_lib,
    decode_version,
    library_version,
    loaded_nccl_paths,
    preload_env,
)

FAKE_NCCL = "int ncclGetVersion(int* v) {{ *v = {code}; return {result}; }}\n"
NOT_NCCL = "int notNccl(void) { return 0; }\n"
SECRET = "s3cr3t-value-4217"
CPU_ONLY = not torch.cuda.is_available()


def _compile(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / (name + ".c")
    src.write_text(source)
    out = directory / name
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return out


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fake NCCLs (new and old version scheme, a second copy, a failing one) and a non-NCCL."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the fake NCCL libraries")
    root = tmp_path_factory.mktemp("libs")
    return {
        "nccl": _compile(root / "a", "libnccl.so.2", FAKE_NCCL.format(code=22105, result=0)),
        "copy": _compile(root / "b", "libnccl.so.2", FAKE_NCCL.format(code=22105, result=0)),
        "old": _compile(root / "old", "libnccl.so.2", FAKE_NCCL.format(code=2708, result=0)),
        "failing": _compile(root / "bad", "libnccl.so.2", FAKE_NCCL.format(code=0, result=3)),
        "misnamed": _compile(root / "c", "mynccl.so", FAKE_NCCL.format(code=22105, result=0)),
        "foo": _compile(root / "foo", "libfoo.so", NOT_NCCL),
    }


# --- `commbench env` in a subprocess, as a user runs it ---------------------------------


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


def test_env_json(secret_env: None) -> None:
    done = commbench("env", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    expected = {"versions", "nccl", "gpus", "topology", "hostname", "env", "backend"}
    assert expected <= info.keys()
    versions = info["versions"]
    assert versions["torch"] == torch.__version__
    assert {"nccl_built", "nccl_runtime", "nccl_path", "cuda", "python"} <= versions.keys()
    assert info["nccl"].keys() == {"built", "runtime", "path", "mismatch"}
    assert {"count", "names", "driver"} <= info["gpus"].keys()
    assert info["env"]["NCCL_SECRET_TOKEN"] == "<redacted>"
    assert info["env"]["NCCL_DEBUG"] == "WARN"
    assert "MY_API_KEY" not in info["env"]
    assert SECRET not in done.stdout
    if CPU_ONLY:
        assert info["backend"] == "gloo"
        assert info["gpus"] == {"count": 0, "names": [], "driver": info["gpus"]["driver"]}
        assert info["nccl"]["built"] is None  # a CPU build of torch has no NCCL


# --- the version probe -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "version"), [(22105, "2.21.5"), (21903, "2.19.3"), (2708, "2.7.8"), (2406, "2.4.6")]
)
def test_decode_version(code: int, version: str) -> None:
    assert decode_version(code) == version


def test_library_version(libs: dict[str, Path]) -> None:
    assert library_version(str(libs["nccl"])) == "2.21.5"
    assert library_version(str(libs["old"])) == "2.7.8"


def test_library_version_relative_path_is_the_file(
    libs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bare name must not send the loader searching its path for some other libnccl.
    monkeypatch.chdir(libs["old"].parent)
    assert library_version("libnccl.so.2") == "2.7.8"


def test_library_version_errors(libs: dict[str, Path]) -> None:
    with pytest.raises(NcclLibraryError, match=r"is not an NCCL library \(no ncclGetVersion\)"):
        library_version(str(libs["foo"]))
    with pytest.raises(NcclLibraryError, match=r"ncclGetVersion failed \(ncclResult 3\)"):
        library_version(str(libs["failing"]))
    with pytest.raises(NcclLibraryError, match="cannot be loaded"):
        library_version(str(libs["foo"].with_suffix(".c")))  # a file, but not a library


def test_check_nccl_lib_accepts_nccl(libs: dict[str, Path]) -> None:
    assert check_nccl_lib(libs["nccl"]) == "2.21.5"
    link = libs["nccl"].parent / "libnccl.so"  # the usual symlink chain is fine
    link.unlink(missing_ok=True)
    link.symlink_to(libs["nccl"].name)
    assert check_nccl_lib(link) == "2.21.5"


def _system_libm() -> Path | None:
    """The real libm mapped into this Python, if any: a genuine non-NCCL library."""
    for path in Path("/proc/self/maps").read_text().split():
        if Path(path).name.startswith("libm.so") and Path(path).is_file():
            return Path(path)
    return None


def test_check_nccl_lib_refuses(libs: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        (tmp_path / "nope.so", f"nccl-lib: '{tmp_path / 'nope.so'}' does not exist"),
        (tmp_path, f"nccl-lib: '{tmp_path}' is not a file"),
        (libs["foo"], f"nccl-lib: '{libs['foo']}' is not an NCCL library (no ncclGetVersion)"),
        (libs["misnamed"], f"nccl-lib: '{libs['misnamed']}' resolves to 'mynccl.so', not"),
    ]
    libm = _system_libm()
    if libm is not None:
        cases.append((libm, f"nccl-lib: '{libm}' is not an NCCL library (no ncclGetVersion)"))
    for path, message in cases:
        with pytest.raises(UsageError) as err:
            check_nccl_lib(path)
        assert str(err.value).startswith(message)
        assert "\n" not in str(err.value)


# --- preloading -----------------------------------------------------------------------------


def test_preload_env_puts_ours_first(libs: dict[str, Path]) -> None:
    ours = str(libs["nccl"])
    env = preload_env(libs["nccl"], {"LD_PRELOAD": f"/x/liba.so /y/libb.so:{ours}", "A": "1"})
    assert env["LD_PRELOAD"] == f"{ours}:/x/liba.so:/y/libb.so"
    assert env[NCCL_LIB_VAR] == ours
    assert env["A"] == "1"
    assert preload_env(libs["nccl"], {})["LD_PRELOAD"] == ours


def test_preload_env_makes_the_path_absolute(
    libs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(libs["nccl"].parent.parent)
    environ: dict[str, str] = {}
    env = preload_env(Path("a/libnccl.so.2"), environ)
    assert env[NCCL_LIB_VAR] == str(libs["nccl"])
    assert environ == {}  # a copy: the launcher's own environment is left alone


def test_loaded_nccl_paths_reads_maps(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    prefix = "7f00-7f01 r-xp 00000000 08:01 1234"
    maps.write_text(
        f"{prefix}      /usr/lib/libnccl-net.so\n"
        f"{prefix}      /opt/nccl/lib/libnccl.so.2.21.5\n"
        f"{prefix}      /opt/nccl/lib/libnccl.so.2.21.5\n"
        f"{prefix}      /old/libnccl.so.2 (deleted)\n"
        f"{prefix}      [heap]\n"
        "7f00-7f01 rw-p 00000000 00:00 0\n"
    )
    assert loaded_nccl_paths(str(maps)) == [
        "/opt/nccl/lib/libnccl.so.2.21.5",
        "/old/libnccl.so.2 (deleted)",
    ]
    assert loaded_nccl_paths(str(tmp_path / "missing")) == []


WORKER = """
import json, os, sys
from commbench.errors import UsageError
from commbench.nccl import collect_nccl, loaded_nccl_path, verify_preloaded
try:
    verify_preloaded(os.environ)
except UsageError as err:
    print(f"commbench: error: {err}", file=sys.stderr)
    sys.exit(2)
print(json.dumps({"path": loaded_nccl_path(), "nccl": collect_nccl()}))
"""


def _worker(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WORKER], capture_output=True, text=True, timeout=120, env=env
    )


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", NCCL_LIB_VAR)}


def test_verify_preloaded_passes_with_the_preloaded_library(libs: dict[str, Path]) -> None:
    done = _worker(preload_env(libs["nccl"], _base_env()))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert os.path.samefile(seen["path"], libs["nccl"])
    assert seen["nccl"]["runtime"] == "2.21.5"
    assert seen["nccl"]["path"] == seen["path"]
    if CPU_ONLY:
        assert seen["nccl"]["built"] is None and seen["nccl"]["mismatch"] is False


def test_verify_preloaded_refuses_another_library(libs: dict[str, Path]) -> None:
    env = preload_env(libs["nccl"], _base_env())
    env[NCCL_LIB_VAR] = str(libs["copy"])  # asked for b/, a/ is what got loaded
    done = _worker(env)
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    expected = f"nccl-lib: '{libs['copy']}' was asked for but '{libs['nccl']}' is loaded"
    assert f"commbench: error: {expected}" in done.stderr


def test_verify_preloaded_refuses_when_not_preloaded(libs: dict[str, Path]) -> None:
    env = {**_base_env(), NCCL_LIB_VAR: str(libs["nccl"])}
    done = _worker(env)
    assert done.returncode == 2, done.stdout
    assert f"nccl-lib: '{libs['nccl']}' is not loaded in this worker" in done.stderr


def test_verify_preloaded_refuses_two_nccls(libs: dict[str, Path]) -> None:
    env = preload_env(libs["nccl"], {**_base_env(), "LD_PRELOAD": str(libs["old"])})
    done = _worker(env)
    assert done.returncode == 2, done.stdout
    assert "nccl-lib: several NCCL libraries are loaded" in done.stderr
    assert str(libs["nccl"]) in done.stderr and str(libs["old"]) in done.stderr


def test_verify_preloaded_without_the_variable_does_nothing() -> None:
    done = _worker(_base_env())
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    if CPU_ONLY:  # no NCCL anywhere in a CPU build of torch
        assert seen == {
            "path": None,
            "nccl": {"built": None, "runtime": None, "path": None, "mismatch": False},
        }


# --- `sweep --nccl-lib` end to end: the workers run with the library preloaded ----------


@pytest.mark.dist
def test_sweep_with_nccl_lib_records_the_loaded_library(
    libs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    done = commbench(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)), "--out", str(out),
        "--nccl-lib", str(libs["nccl"]), "--collectives", "all_gather", "--tokens", "8",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    versions = json.loads((out / "meta.json").read_text())["versions"]
    assert versions["nccl_runtime"] == "2.21.5"
    assert Path(versions["nccl_path"]).samefile(libs["nccl"])


def test_sweep_refuses_a_library_that_is_not_nccl(libs: dict[str, Path]) -> None:
    done = commbench("sweep", "--nproc", "2", "--nccl-lib", str(libs["foo"]), timeout=60)
    assert done.returncode == 2
    assert "is not an NCCL library (no ncclGetVersion)" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.dist
def test_torchrun_without_the_preload_is_refused(libs: dict[str, Path]) -> None:
    done = torchrun(2, "sweep", "--nccl-lib", str(libs["nccl"]), timeout=120)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("commbench: error:")]
    assert errors and all("nccl-lib" in line for line in errors), done.stderr
