"""`commbench presets`: the model presets for `sweep --preset NAME`."""

from __future__ import annotations


def presets() -> None:
    """The model presets for `sweep --preset NAME`: shapes, splits, worlds (no torch)."""
    from commbench.output.presets import show_presets

    show_presets()
