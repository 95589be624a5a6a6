"""Model presets: configs/NAME.toml files with a [model] table (`sweep --preset NAME`).

A preset is an ordinary, complete config file whose sweep keys replay one model's
serving shapes, plus a [model] table saying which model, from what source, and which
(tp, dp) splits serving uses. Listing them reads the TOML files only: no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from commbench.config.serving_model import ModelInfo, check_model
from commbench.config.settings import preset_path, read_toml


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    model: ModelInfo
    tp: list[int] | None  # the sweep's group sizes (attn_tp)

    @property
    def min_world(self) -> int | None:
        """The smallest world every swept group size divides (None: any world)."""
        return math.lcm(*self.tp) if self.tp else None

    @property
    def serving_worlds(self) -> list[int]:
        """The worlds that reproduce serving's concurrent groups: each split's tp."""
        return sorted({split.tp for split in self.model.splits})


def load_preset(name: str) -> Preset:
    """A preset's [model] and group sizes, validated without building a SweepConfig
    (whose collective check imports the ops, and with them torch)."""
    path = preset_path(name)
    layer = check_model(read_toml(path, "preset"), str(path))
    assert layer is not None  # preset_path only names files with a [model] table
    return Preset(name, path, layer.model, layer.tp)


def describe_splits(model: ModelInfo) -> str:
    """`tp 8: dp 1/2/4/8; tp 16: dp 2/4`."""
    by_tp: dict[int, list[int]] = {}
    for split in model.splits:
        by_tp.setdefault(split.tp, []).append(split.dp)
    return "; ".join(
        f"tp {tp}: dp {'/'.join(map(str, sorted(dps)))}" for tp, dps in sorted(by_tp.items())
    )
