"""Preloading a libnccl (`sweep --nccl-lib`): whether torch can run on it, decided before
any worker; the workers' environment; and each worker's check that NCCL's calls resolve
to it (commbench.env.nccl says which library they resolve to).

A libnccl older than the one torch was built with lacks symbols torch's libraries need:
with it preloaded, `import torch` dies in every worker ("undefined symbol: ..."), each with
a traceback. So the library is judged up front, with one line and exit 2:

- its symbols, read from the files (commbench.env.elfsyms): every `nccl*` symbol torch's
  libraries require must be defined by it; this needs neither torch nor a loaded copy, so
  a torchrun worker that was started with the library preloaded can say it too;
- then, by our own launcher, in a child process with the library preloaded as the workers
  will have it: torch imports, and NCCL's calls resolve to this library. The child's
  versions are the ones the workers will record, which `--resume` compares against.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from commbench.env.elfsyms import dynamic_symbols
from commbench.env.nccl import NcclLibraryError, bound_nccl, is_nccl_name, library_version
from commbench.errors import UsageError

PROBE_TIMEOUT = 600.0  # seconds; importing a CUDA torch takes 20 s on a loaded CPU machine
LISTED = 8  # missing symbols named in the line; the rest are counted
NCCL_PIN = re.compile(r"nvidia[-_.]nccl[-_.]cu\d+\s*==\s*([0-9.]+)", re.IGNORECASE)
NCCL_LIB_VAR = "COMMBENCH_NCCL_LIB"  # tells a worker which library it must have loaded


def check_nccl_lib(path: Path) -> str:
    """Validate `sweep --nccl-lib PATH` before any worker starts; returns its version."""
    if not path.exists():
        raise UsageError(f"nccl-lib: '{path}' does not exist")
    if not path.is_file():
        raise UsageError(f"nccl-lib: '{path}' is not a file")
    try:
        version = library_version(str(path))
    except NcclLibraryError as err:
        raise UsageError(f"nccl-lib: {err}") from err
    real = path.resolve()
    if not is_nccl_name(str(real)):
        # /proc/self/maps shows the resolved file; nccl_mapped finds copies by this name.
        raise UsageError(f"nccl-lib: '{path}' resolves to '{real.name}', not libnccl.so*")
    return version


def _preload_entries(environ: Mapping[str, str]) -> list[str]:
    """LD_PRELOAD's entries (the loader accepts colons and spaces between them)."""
    return [entry for entry in re.split(r"[:\s]+", environ.get("LD_PRELOAD", "")) if entry]


def preloaded_first(path: Path, environ: Mapping[str, str]) -> bool:
    """Whether `path` is the first library LD_PRELOAD names: the one NCCL calls bind."""
    entries = _preload_entries(environ)
    return bool(entries) and _same_file(entries[0], str(path))


def preload_env(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` for workers: this library first in LD_PRELOAD, and its path.

    Existing LD_PRELOAD entries (colon or space separated) are kept after ours.
    """
    ours = os.path.abspath(path)
    others = [entry for entry in _preload_entries(environ) if entry != ours]
    return {**environ, "LD_PRELOAD": ":".join([ours, *others]), NCCL_LIB_VAR: ours}


def verify_preloaded(environ: Mapping[str, str]) -> None:
    """At worker start-up: NCCL's calls go to the library `--nccl-lib` asked for.

    A mismatch is an error, never a footnote: the numbers would belong to another NCCL.
    Other copies mapped but bound by nothing (torch's loader maps the wheel's) are fine.
    Does nothing unless COMMBENCH_NCCL_LIB is set.
    """
    wanted = environ.get(NCCL_LIB_VAR)
    if not wanted:
        return
    import torch  # noqa: F401  so torch's own libnccl, if it links one, is mapped too

    bound = bound_nccl()
    if bound is None:
        raise UsageError(f"nccl-lib: '{wanted}' is not loaded in this worker (no LD_PRELOAD?)")
    if not _same_file(bound.path, wanted):
        raise UsageError(
            f"nccl-lib: '{wanted}' was asked for but NCCL calls resolve to '{bound.path}'"
            " (is it first in LD_PRELOAD?)"
        )


def _same_file(loaded: str, wanted: str | Path) -> bool:
    """Whether two paths name one file; False where either is gone (a library replaced
    or removed after it was mapped)."""
    try:
        return os.path.samefile(loaded, wanted)
    except OSError:
        return False


def torch_libraries() -> list[Path]:
    """torch's shared libraries (torch/lib/*.so*, torch/_C*.so), found without importing it."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(spec.submodule_search_locations[0])
    return sorted([*root.glob("lib/*.so*"), *root.glob("_C*.so")])


def required_symbols() -> set[str]:
    """The `nccl*` symbols torch's libraries take from a shared library."""
    required: set[str] = set()
    for library in torch_libraries():
        required |= dynamic_symbols(library, b"nccl").required
    return required


def missing_symbols(path: Path, required: set[str] | None = None) -> list[str]:
    """The `nccl*` symbols torch's libraries require (`required`) that `path` lacks."""
    required = required_symbols() if required is None else required
    return sorted(required - dynamic_symbols(path, b"nccl").defined)


def check_preloadable(path: Path) -> str:
    """`path` is an NCCL library that defines what torch needs; returns its version.

    Neither imports torch nor needs it importable: a worker started with an unusable
    library preloaded refuses here, before `import torch` would die. A torch that takes no
    NCCL symbol from outside (built without NCCL, or with NCCL linked into it) is refused:
    it would run on its own NCCL, or none, whatever is preloaded, and every later check
    would pass.
    """
    version = check_nccl_lib(path)
    required = required_symbols()
    if not required:
        raise UsageError(
            f"nccl-lib: {_torch_identity()} takes no NCCL symbol from a shared library (built"
            " without NCCL, or with NCCL linked into it): a preloaded libnccl would not be used"
        )
    if missing := missing_symbols(path, required):
        named = ", ".join(missing[:LISTED])
        more = f" and {len(missing) - LISTED} more" if len(missing) > LISTED else ""
        raise UsageError(
            f"nccl-lib: '{path}' is NCCL {version}, which lacks {len(missing)} symbol(s) that"
            f" {_torch_identity()} needs: {named}{more}"
        )
    return version


def check_compatible(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """Our launcher's check: the library's symbols, then torch imported with it preloaded
    in a child process. Returns the child's versions (what the workers will record)."""
    version = check_preloadable(path)
    probe = _run_child(preload_env(path, environ))
    if "error" in probe:
        raise UsageError(
            f"nccl-lib: {_torch_identity()} does not import with '{path}' (NCCL {version})"
            f" preloaded: {probe['error']}"
        )
    versions = probe["versions"]
    bound = versions.get("nccl_path")
    if bound is None or not _same_file(bound, path):
        raise UsageError(
            f"nccl-lib: with '{path}' preloaded, NCCL calls resolve to '{bound}', not to it"
        )
    return versions


def _run_child(env: Mapping[str, str]) -> dict[str, Any]:
    """This module's probe in a child process with `env`; its last stdout line, parsed."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "commbench.env.preload"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            env=dict(env),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"the check did not finish within {PROBE_TIMEOUT:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        said = done.stderr.strip().splitlines()
        return {"error": said[-1] if said else f"the check exited with {done.returncode}"}
    return json.loads(lines[-1])


def _torch_identity() -> str:
    """'torch 2.13.0+cu130 (its wheel ships NCCL 2.29.7)', from torch's package metadata.

    Not from torch itself: this process may have the library preloaded, and then torch
    cannot be imported to ask. Read from files, it is quick, so every rank of a torchrun
    says its line before the agent ends the others."""
    try:
        torch_dist = metadata.distribution("torch")
    except metadata.PackageNotFoundError:
        return "torch"
    pins = [NCCL_PIN.match(requirement) for requirement in torch_dist.requires or []]
    shipped = next((pin.group(1) for pin in pins if pin), None)
    ships = f" (its wheel ships NCCL {shipped})" if shipped else ""
    return f"torch {torch_dist.version}{ships}"


def _probe() -> dict[str, Any]:
    """In the child: import torch (with whatever is preloaded) and report the versions."""
    try:
        import torch  # noqa: F401
    except (ImportError, OSError) as err:
        lines = str(err).strip().splitlines()
        return {"error": lines[0] if lines else type(err).__name__}
    from commbench.env.probe import collect_versions

    return {"versions": collect_versions()}


if __name__ == "__main__":
    print(json.dumps(_probe()))
