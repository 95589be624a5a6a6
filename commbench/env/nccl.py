"""Which NCCL actually runs: the library NCCL's symbols resolve to, not the one torch names.

`torch.cuda.nccl.version()` is the version torch was *built* with. A PyTorch wheel links its
own libnccl.so.2, and `LD_PRELOAD` (not `LD_LIBRARY_PATH`, which the wheel's RPATH beats)
can swap in another one. Several copies may then be mapped at once: torch 2.13's loader
(`_load_global_deps` -> `_preload_cuda_deps` in torch/__init__.py) opens the nvidia-nccl
wheel's libnccl by absolute path even when a preloaded libnccl.so.2 is already there (2.7.1
does so only when libtorch_global_deps fails to load), yet libtorch_cuda's
`NEEDED libnccl.so.2` and its symbol lookups bind the preloaded one; the address order in
/proc/self/maps says nothing about which. So the runtime NCCL is the
object that `ncclGetVersion` resolves to, looked up as torch's own libraries look it up
(the global scope first, then torch._C's dependencies), asked for its version through that
very symbol (docs/method.md, "Metadata and identity"). Every mapped copy is recorded too,
for the record.

A torch that links NCCL statically, or has none (CPU builds), binds no libnccl: the
runtime version is then unknown here (None).
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class BoundNccl:
    path: str  # the file (symbolic links and torch's RPATH "lib/../.." resolved)
    version: str  # that library's own ncclGetVersion


class _DlInfo(ctypes.Structure):
    _fields_ = (
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    )


def bound_nccl() -> BoundNccl | None:
    """The library this process's NCCL calls go to, or None if none is bound.

    The symbol is looked up in the global scope first (LD_PRELOAD, the executable's
    libraries, RTLD_GLOBAL ones), then among torch._C's dependencies, the scope that
    libtorch_cuda's own lookups fall back on: the wheel's libnccl is loaded RTLD_LOCAL.
    """
    libc = ctypes.CDLL(None)
    libc.dlsym.restype, libc.dlsym.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]
    libc.dlopen.restype, libc.dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    address = libc.dlsym(None, b"ncclGetVersion")  # None is RTLD_DEFAULT
    torch_c = sys.modules.get("torch._C")
    if not address and torch_c is not None and getattr(torch_c, "__file__", None):
        handle = libc.dlopen(os.fsencode(torch_c.__file__), os.RTLD_NOLOAD | os.RTLD_LAZY)
        address = libc.dlsym(handle, b"ncclGetVersion") if handle else None
    info = _DlInfo()
    if not address or not libc.dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    path = os.path.realpath(os.fsdecode(info.dli_fname))  # the file, as the maps name it
    get_version = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int))(address)
    try:
        return BoundNccl(path, _ask_version(path, get_version))
    except NcclLibraryError:
        return None


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
    return _ask_version(path, get_version)


def _ask_version(path: str, get_version: Any) -> str:
    code = ctypes.c_int(0)
    result = get_version(ctypes.byref(code))
    if result != 0:
        raise NcclLibraryError(f"'{path}': ncclGetVersion failed (ncclResult {result})")
    return decode_version(code.value)


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
    """NCCL built (torch's claim) vs bound (the library's own answer), its path, and
    every libnccl mapped into the process, bound or not."""
    built = built_version()  # imports torch first, which maps the NCCL it links
    bound = bound_nccl()
    runtime = None if bound is None else bound.version
    return {
        "built": built,
        "runtime": runtime,
        "path": None if bound is None else bound.path,
        "mapped": sorted(loaded_nccl_paths()),  # sorted: address order means nothing
        "mismatch": built is not None and runtime is not None and built != runtime,
    }
