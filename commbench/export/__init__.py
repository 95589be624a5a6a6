"""Exporters: one small module per output format (hyperfine's model)."""

from __future__ import annotations

import math
from typing import Any

from commbench.point import width_label


def row_label(row: Any) -> str:
    """A row's key in the words an engineer would use."""
    return (
        f"{row['collective']}/{row['variant']} {row['dtype']} T={row['tokens']} "
        f"{width_label(row)} tp={row['tp']} dp={row['dp']}"
    )


def number(value: float, spec: str) -> str:
    """A figure for a table cell; empty where it could not be computed (NaN)."""
    return "" if value is None or math.isnan(value) else f"{value:{spec}}"
