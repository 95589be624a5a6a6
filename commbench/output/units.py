"""Sizes in the binary units people read them in (reports, plot axes)."""

from __future__ import annotations

BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def scale_bytes(nbytes: float, largest: str = "TiB") -> tuple[float, str]:
    """`nbytes` as (value, unit): the largest unit up to `largest` it is at least one of."""
    power, top = 0, BINARY_UNITS.index(largest)
    while power < top and nbytes >= 1024 ** (power + 1):
        power += 1
    return nbytes / 1024**power, BINARY_UNITS[power]
