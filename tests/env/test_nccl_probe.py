"""The NCCL version trap, against real compiled libraries.

Small C libraries that export `ncclGetVersion` (and one that does not) are compiled with
gcc, loaded with ctypes, and preloaded into real subprocesses: the corner cases. Where
torch itself must run with the library preloaded, the libraries are ones this torch can
run on: those fakes under a CPU build (it needs no NCCL symbol), real libnccl builds
under the CUDA build (tests/support/realnccl.py; test_nccl_real.py has those cases).
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
from support.cli import commbench, tiny_config, torchrun
from support.realnccl import real_libraries

from commbench.env.elfsyms import DynamicSymbols, dynamic_symbols
from commbench.env.nccl import (
    NcclLibraryError,
    built_version,
    decode_version,
    library_version,
    loaded_nccl_paths,
)
from commbench.env.preload import NCCL_LIB_VAR, check_nccl_lib, missing_symbols, preload_env
from commbench.errors import UsageError

FAKE_NCCL = "int ncclGetVersion(int* v) {{ *v = {code}; return {result}; }}\n"
NOT_NCCL = "int notNccl(void) { return 0; }\n"
SECRET = "s3cr3t-value-4217"
CPU_ONLY = not torch.cuda.is_available()
BUILT = built_version()  # None in a CPU build of torch: it links no NCCL


def _compile(directory: Path, name: str, source: str) -> Path:
    """A shared library with the SONAME real ones have, so the loader treats it as one."""
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / (name + ".c")
    src.write_text(source)
    out = directory / name
    soname = "libnccl.so.2" if name.startswith("libnccl") else name
    command = ["gcc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", str(out), str(src)]
    subprocess.run(command, check=True)
    return out


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fake NCCLs (new and old version scheme, a second copy, a failing one) and a non-NCCL."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the fake NCCL libraries")
    root = tmp_path_factory.mktemp("libs")
    return {
        "nccl": _compile(root / "a", "libnccl.so.2", FAKE_NCCL.format(code=22105, result=0)),
        "copy": _compile(root / "b", "libnccl.so.2", FAKE_NCCL.format(code=22106, result=0)),
        "old": _compile(root / "old", "libnccl.so.2", FAKE_NCCL.format(code=2708, result=0)),
        "failing": _compile(root / "bad", "libnccl.so.2", FAKE_NCCL.format(code=0, result=3)),
        "misnamed": _compile(root / "c", "mynccl.so", FAKE_NCCL.format(code=22105, result=0)),
        "foo": _compile(root / "foo", "libfoo.so", NOT_NCCL),
    }


@pytest.fixture(scope="module")
def usable(libs: dict[str, Path]) -> dict[str, tuple[Path, str]]:
    """Two NCCL libraries of different versions that this torch runs on: name -> (path,
    version). Fakes for a CPU build, real builds (torch's own version and a newer one)
    for the CUDA build."""
    if BUILT is None:
        return {"a": (libs["nccl"], "2.21.5"), "b": (libs["copy"], "2.21.6")}
    real = real_libraries()
    return {
        "a": (real["newer"], real["newer"].parent.name),
        "b": (real["equal"], real["equal"].parent.name),
    }


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


def test_dynamic_symbols_reads_what_a_library_defines_and_requires(tmp_path: Path) -> None:
    source = (
        "extern int ncclAllReduce(void); extern int ncclMaybe(void) __attribute__((weak));\n"
        "int ncclGetVersion(int* v) { *v = 22105; return ncclAllReduce() + (ncclMaybe ? 1 : 0); }\n"
        "int helper(void) { return 0; }\n"
    )
    library = _compile(tmp_path, "libuser.so", source)
    found = dynamic_symbols(library, b"nccl")
    assert found.defined == {"ncclGetVersion"}
    assert found.required == {"ncclAllReduce"}  # the weak one is optional
    assert dynamic_symbols(library).defined >= {"ncclGetVersion", "helper"}
    assert dynamic_symbols(f"{library}.c") == DynamicSymbols()  # not ELF


def test_missing_symbols_are_those_torch_requires(libs: dict[str, Path]) -> None:
    missing = missing_symbols(libs["nccl"])  # defines ncclGetVersion only
    if BUILT is None:
        assert missing == []  # a CPU build of torch requires no NCCL symbol
    else:
        assert "ncclCommInitRank" in missing and "ncclGetVersion" not in missing


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
from commbench.env.elfsyms import DynamicSymbols, dynamic_symbols
from commbench.errors import UsageError
from commbench.env.nccl import collect_nccl
from commbench.env.preload import verify_preloaded
try:
    verify_preloaded(os.environ)
except UsageError as err:
    print(f"commbench: error: {err}", file=sys.stderr)
    sys.exit(2)
print(json.dumps(collect_nccl()))
"""


def _worker(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WORKER], capture_output=True, text=True, timeout=300, env=env
    )


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", NCCL_LIB_VAR)}


def test_verify_preloaded_passes_with_the_preloaded_library(
    usable: dict[str, tuple[Path, str]],
) -> None:
    path, version = usable["a"]
    done = _worker(preload_env(path, _base_env()))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert os.path.samefile(seen["path"], path)
    assert seen["runtime"] == version
    assert seen["built"] == BUILT and seen["mismatch"] is (BUILT is not None and version != BUILT)


def test_verify_preloaded_refuses_another_library(usable: dict[str, tuple[Path, str]]) -> None:
    env = preload_env(usable["a"][0], _base_env())
    env[NCCL_LIB_VAR] = str(usable["b"][0])  # asked for b, a is what got preloaded
    done = _worker(env)
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    expected = (
        f"nccl-lib: '{usable['b'][0]}' was asked for but NCCL calls resolve to"
        f" '{usable['a'][0]}' (is it first in LD_PRELOAD?)"
    )
    assert f"commbench: error: {expected}" in done.stderr


def test_verify_preloaded_refuses_when_not_preloaded(usable: dict[str, tuple[Path, str]]) -> None:
    wanted = usable["a"][0]
    done = _worker({**_base_env(), NCCL_LIB_VAR: str(wanted)})
    assert done.returncode == 2, done.stdout
    if BUILT is None:  # nothing answers ncclGetVersion at all
        assert f"nccl-lib: '{wanted}' is not loaded in this worker (no LD_PRELOAD?)" in done.stderr
    else:  # the wheel's libnccl does
        assert f"nccl-lib: '{wanted}' was asked for but NCCL calls resolve to" in done.stderr


def test_two_preloaded_copies_bind_the_first(usable: dict[str, tuple[Path, str]]) -> None:
    """A second copy mapped but bound by nothing is not an error; it is on the record."""
    (first, version), (second, _) = usable["a"], usable["b"]
    env = preload_env(first, {**_base_env(), "LD_PRELOAD": str(second)})
    done = _worker(env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert os.path.samefile(seen["path"], first) and seen["runtime"] == version
    assert {str(first), str(second)} <= set(seen["mapped"])


def test_verify_preloaded_without_the_variable_does_nothing() -> None:
    done = _worker(_base_env())
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    if BUILT is None:  # no NCCL anywhere in a CPU build of torch
        assert seen == {
            "built": None, "runtime": None, "path": None, "mapped": [], "mismatch": False
        }  # fmt: skip
    else:
        assert seen["runtime"] == BUILT and seen["mapped"] == [seen["path"]]


# --- `sweep --nccl-lib` end to end: the workers run with the library preloaded ----------


# Under a CPU build of torch, which takes no NCCL symbol, --nccl-lib is refused (below):
# these run under the CUDA build (make test-cuda-build), with real libraries.
TAKES_NCCL = pytest.mark.skipif(BUILT is None, reason="a CPU build of torch refuses --nccl-lib")


@pytest.mark.skipif(BUILT is not None, reason="this torch takes NCCL's symbols from a library")
def test_a_torch_that_takes_no_nccl_symbol_refuses_nccl_lib(
    libs: dict[str, Path], tmp_path: Path
) -> None:
    """It would run on its own NCCL (linked into it), or none, whatever is preloaded, and
    every later check would pass: refused before any worker, and by every torchrun rank."""
    said = "takes no NCCL symbol from a shared library (built without NCCL, or with NCCL"
    config = str(tiny_config(tmp_path))
    done = commbench("sweep", "--nproc", "2", "--config", config, "--nccl-lib", str(libs["nccl"]))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"commbench: error: nccl-lib: torch {torch.__version__} {said} linked into it): a"
        " preloaded libnccl would not be used"
    ]
    ranks = torchrun(2, "sweep", "--config", config, "--nccl-lib", str(libs["nccl"]))
    # each worker says it, but torchrun stops the other as soon as one leaves: one or two lines
    errors = [line for line in ranks.stderr.splitlines() if line.startswith("commbench: error:")]
    assert ranks.returncode != 0 and "exitcode  : 2" in ranks.stderr
    assert 1 <= len(errors) <= 2 and all(said in line for line in errors), ranks.stderr
    assert not (tmp_path / "run").exists()


@TAKES_NCCL
def test_sweep_with_nccl_lib_records_the_loaded_library(
    usable: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    path, version = usable["a"]
    out = tmp_path / "run"
    done = commbench(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)), "--out", str(out),
        "--nccl-lib", str(path), "--collectives", "all_gather", "--tokens", "8",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    versions = json.loads((out / "meta.json").read_text())["versions"]
    assert versions["nccl_runtime"] == version
    assert Path(versions["nccl_path"]).samefile(path)
    assert str(path) in versions["nccl_mapped"]


def test_sweep_refuses_a_library_that_is_not_nccl(libs: dict[str, Path]) -> None:
    done = commbench("sweep", "--nproc", "2", "--nccl-lib", str(libs["foo"]), timeout=60)
    assert done.returncode == 2
    assert "is not an NCCL library (no ncclGetVersion)" in done.stderr
    assert "Traceback" not in done.stderr


@TAKES_NCCL
def test_torchrun_with_nccl_lib_preloads_it_in_every_worker(
    usable: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """No LD_PRELOAD given: each rank executes itself again with the library preloaded."""
    path, version = usable["a"]
    out = tmp_path / "run"
    done = torchrun(
        2, "sweep", "--config", str(tiny_config(tmp_path)), "--out", str(out),
        "--nccl-lib", str(path), "--collectives", "all_gather", "--tokens", "8",
        env={"LD_PRELOAD": ""}, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["versions"]["nccl_runtime"] == version and meta["ranks_disagree"] == {}
    assert Path(meta["versions"]["nccl_path"]).samefile(path)
