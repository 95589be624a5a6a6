"""Model presets: configs/NAME.toml files with a [model] table (`sweep --preset NAME`).

A preset is an ordinary, complete config file whose sweep keys replay one model's
serving shapes, plus a [model] table saying which model, from what source, and which
(tp, dp) splits serving uses. Listing them reads the TOML files only: no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from commbench.config.serving_model import ModelInfo, check_model
from commbench.config.settings import preset_names, preset_path, read_toml


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


def presets_table(presets: list[Preset]) -> Table:
    table = Table(title="Model presets (commbench sweep --preset NAME)")
    table.add_column("preset", no_wrap=True)
    table.add_column("model", overflow="fold")
    table.add_column("hidden", justify="right", no_wrap=True)
    table.add_column("vocab", justify="right", no_wrap=True)
    table.add_column("experts", justify="right", no_wrap=True)
    table.add_column("serving splits")
    table.add_column("world (serving)", justify="right", no_wrap=True)
    table.add_column("source", overflow="fold")
    for preset in presets:
        model = preset.model
        world = "any" if preset.min_world is None else str(preset.min_world)
        serving = ", ".join(map(str, preset.serving_worlds))
        table.add_row(
            preset.name,
            model.name,
            str(model.hidden),
            str(model.vocab),
            f"{model.experts} top-{model.topk}" if model.experts else "dense",
            describe_splits(model),
            f"{world} ({serving})",
            model.source,
        )
    return table


def show_presets(console: Console | None = None) -> None:
    """The table, one line per preset: as wide as it needs when piped, wrapped in a terminal."""
    if console is None:
        from commbench.output.console import make_console

        console = make_console()
    console.print(presets_table([load_preset(name) for name in preset_names()]))
    console.print(
        "world: the smallest world every swept group size divides (--nproc); in parentheses"
        " the serving tp, whose world runs dp groups at once as serving does."
    )
