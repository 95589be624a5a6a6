"""Exporters: one small module per output format (hyperfine's model)."""

from __future__ import annotations

from typing import Any


def row_label(row: Any) -> str:
    """A row's key in the words an engineer would use."""
    return (
        f"{row['collective']}/{row['variant']} {row['dtype']} T={row['tokens']} "
        f"H={row['hidden']} tp={row['tp']} dp={row['dp']}"
    )
