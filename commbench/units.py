"""Units people read: sizes in binary units (reports, plot axes) and times in the one rule
every command prints them by (us below a millisecond, ms below a second, then s)."""

from __future__ import annotations

import math

BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def scale_bytes(nbytes: float, largest: str = "TiB") -> tuple[float, str]:
    """`nbytes` as (value, unit): the largest unit up to `largest` it is at least one of."""
    power, top = 0, BINARY_UNITS.index(largest)
    while power < top and nbytes >= 1024 ** (power + 1):
        power += 1
    return nbytes / 1024**power, BINARY_UNITS[power]


def format_size(nbytes: float) -> str:
    """`512 B`, `1.5 MiB`: whole bytes, else one decimal, up to GiB."""
    value, unit = scale_bytes(nbytes, largest="GiB")
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def format_time(us: float) -> str:
    """A time given in microseconds: `85.3 us`, `1.58 ms`, `2.41 s`; empty for NaN (not
    measured). Every command's tables and sentences print times this way."""
    if us is None or math.isnan(us):
        return ""
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.1f} us"
