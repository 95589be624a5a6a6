"""Which NCCL actually runs: the library mapped into this process, not the one torch names.

`torch.cuda.nccl.version()` is the version torch was *built* with. A PyTorch wheel links its
own libnccl.so.2, and `LD_PRELOAD` (not `LD_LIBRARY_PATH`, which the wheel's RPATH beats)
can swap in another one; either way the version that runs is the answer of `ncclGetVersion`
in the library mapped into the process. So: find that library in /proc/self/maps, ask it,
and flag a difference from the built version (METHOD.md, "Metadata").

A torch that links NCCL statically maps no libnccl: the runtime version is then unknown here
(None), and it is the built one.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from commbench.errors import UsageError

NCCL_LIB_VAR = "COMMBENCH_NCCL_LIB"  # tells a worker which library it must have loaded
PROC_MAPS = "/proc/self/maps"
# libnccl.so, libnccl.so.2, libnccl.so.2.21.5; not the plugins (libnccl-net.so, -tuner, ...)
NCCL_NAME = re.compile(r"^libnccl\.so(\.[\w.]+)?$")
NEW_SCHEME = 10000  # NCCL >= 2.9 encodes major*10000 + minor*100 + patch


class NcclLibraryError(Exception):
    """A file that cannot be loaded, or is not an NCCL library."""


def is_nccl_name(path: str) -> bool:
    return bool(NCCL_NAME.match(os.path.basename(path)))


def loaded_nccl_paths(maps: str = PROC_MAPS) -> list[str]:
    """Every distinct libnccl mapped into this process, in address order (Linux only)."""
    try:
        with open(maps) as handle:
            lines = handle.readlines()
    except OSError:
        return []  # not Linux, or no procfs: unknown
    found: list[str] = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6:
            path = fields[5].strip()  # kept with a " (deleted)" suffix: it is what runs
            name = path.removesuffix(" (deleted)")
            if path.startswith("/") and is_nccl_name(name) and path not in found:
                found.append(path)
    return found


def loaded_nccl_path() -> str | None:
    """The libnccl*.so mapped into this process, or None if none is."""
    paths = loaded_nccl_paths()
    return paths[0] if paths else None


def decode_version(code: int) -> str:
    """ncclGetVersion's integer as "X.Y.Z" (22105 -> 2.21.5; before 2.9: 2708 -> 2.7.8)."""
    if code >= NEW_SCHEME:
        major, rest = divmod(code, NEW_SCHEME)
    else:
        major, rest = divmod(code, 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def library_version(path: str) -> str:
    """The version `path` itself reports through ncclGetVersion.

    The path is made absolute first: a bare name would make the loader search its path
    and answer for some other library. If this file is already mapped, dlopen returns the
    loaded copy, so the answer is the running library's.
    """
    try:
        library = ctypes.CDLL(os.path.abspath(path))
    except OSError as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise NcclLibraryError(f"'{path}' cannot be loaded ({first_line})") from err
    try:
        get_version = library.ncclGetVersion
    except AttributeError as err:
        raise NcclLibraryError(f"'{path}' is not an NCCL library (no ncclGetVersion)") from err
    code = ctypes.c_int(0)
    result = get_version(ctypes.byref(code))
    if result != 0:
        raise NcclLibraryError(f"'{path}': ncclGetVersion failed (ncclResult {result})")
    return decode_version(code.value)


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
        # /proc/self/maps shows the resolved file; workers find their NCCL by this name.
        raise UsageError(f"nccl-lib: '{path}' resolves to '{real.name}', not libnccl.so*")
    return version


def preload_env(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` for workers: this library first in LD_PRELOAD, and its path.

    Existing LD_PRELOAD entries (colon or space separated) are kept after ours.
    """
    ours = os.path.abspath(path)
    others = [
        entry
        for entry in re.split(r"[:\s]+", environ.get("LD_PRELOAD", ""))
        if entry and entry != ours
    ]
    return {**environ, "LD_PRELOAD": ":".join([ours, *others]), NCCL_LIB_VAR: ours}


def verify_preloaded(environ: Mapping[str, str]) -> None:
    """At worker start-up: the NCCL that `--nccl-lib` asked for is the one mapped here.

    A mismatch is an error, never a footnote: the numbers would belong to another NCCL.
    Does nothing unless COMMBENCH_NCCL_LIB is set.
    """
    wanted = environ.get(NCCL_LIB_VAR)
    if not wanted:
        return
    import torch  # noqa: F401  so torch's own libnccl, if it links one, is mapped too

    loaded = loaded_nccl_paths()
    if not loaded:
        raise UsageError(f"nccl-lib: '{wanted}' is not loaded in this worker (no LD_PRELOAD?)")
    if len(loaded) > 1:
        raise UsageError(f"nccl-lib: several NCCL libraries are loaded: {', '.join(loaded)}")
    if not _same_file(loaded[0], wanted):
        raise UsageError(f"nccl-lib: '{wanted}' was asked for but '{loaded[0]}' is loaded")
    try:
        running, expected = library_version(loaded[0]), library_version(wanted)
    except NcclLibraryError as err:
        raise UsageError(f"nccl-lib: {err}") from err
    if running != expected:
        raise UsageError(f"nccl-lib: the loaded NCCL reports {running}, '{wanted}' is {expected}")


def _same_file(loaded: str, wanted: str) -> bool:
    try:
        return os.path.samefile(loaded, wanted)
    except OSError:  # e.g. "(deleted)": the file was replaced after it was mapped
        return False


def built_version() -> str | None:
    """The NCCL version torch was compiled against; None in a build without NCCL."""
    import torch

    try:
        version = torch.cuda.nccl.version()
    except (AttributeError, RuntimeError):  # CPU builds lack torch._C._nccl_version
        return None
    if isinstance(version, int):  # torch < 1.13 returned the raw code
        return decode_version(version)
    return ".".join(str(part) for part in version)


def collect_nccl() -> dict[str, Any]:
    """NCCL built (torch's claim) vs loaded (the library's own answer), and the path."""
    built = built_version()  # imports torch first, which maps the NCCL it links
    path = loaded_nccl_path()
    runtime = None
    if path is not None:
        try:
            runtime = library_version(path)
        except NcclLibraryError:
            runtime = None
    return {
        "built": built,
        "runtime": runtime,
        "path": path,
        "mismatch": built is not None and runtime is not None and built != runtime,
    }
