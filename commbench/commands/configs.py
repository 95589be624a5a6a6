"""`commbench configs`: the configs shipped with commbench, for `sweep --config NAME`."""

from __future__ import annotations


def configs() -> None:
    """The configs shipped with commbench, for `--config NAME` (no torch)."""
    from commbench.output.presets import show_configs

    show_configs()
