"""The dynamic symbols of an ELF shared library, read from the file without loading it.

Whether torch can run on a given libnccl is a question about symbols: every `nccl*` symbol
torch's libraries leave undefined must be defined by the library. Loading the library to
find out would map it into the asking process; reading `.dynsym` does not.
64-bit little-endian ELF only (Linux on x86_64 and aarch64): anything else reads as empty.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
ELFCLASS64, ELFDATA2LSB = 2, 1
SHT_DYNSYM = 11
SHN_UNDEF = 0
STB_GLOBAL = 1
SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
SYMBOL = struct.Struct("<IBBHQQ")


@dataclass
class DynamicSymbols:
    defined: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)  # undefined and not weak


def dynamic_symbols(path: str | Path, prefix: bytes = b"") -> DynamicSymbols:
    """Defined and required (undefined, non-weak) dynamic symbols whose names start with
    `prefix`; empty for a file that is not a 64-bit little-endian ELF."""
    found = DynamicSymbols()
    with open(path, "rb") as handle:
        if handle.read(6) != ELF_MAGIC + bytes([ELFCLASS64, ELFDATA2LSB]):
            return found
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for symtab, strtab in _dynamic_tables(data):
                _read_symbols(data, symtab, strtab, prefix, found)
    return found


def _dynamic_tables(data: mmap.mmap) -> list[tuple[tuple[int, int], int]]:
    """((offset, size) of each .dynsym, offset of its string table)."""
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [SECTION_HEADER.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    return [
        ((section[4], section[5]), sections[section[6]][4])
        for section in sections
        if section[1] == SHT_DYNSYM
    ]


def _read_symbols(
    data: mmap.mmap, symtab: tuple[int, int], strtab: int, prefix: bytes, found: DynamicSymbols
) -> None:
    offset, size = symtab
    for name, info, _, shndx, _, _ in SYMBOL.iter_unpack(data[offset : offset + size]):
        start = strtab + name
        if name == 0 or data[start : start + len(prefix)] != prefix:
            continue
        text = data[start : data.find(b"\0", start)].decode(errors="replace")
        if shndx != SHN_UNDEF:
            found.defined.add(text)
        elif info >> 4 == STB_GLOBAL:
            found.required.add(text)
