"""`commbench presets`: the model presets as a table (configs/NAME.toml with a [model])."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from commbench.config.presets import Preset, describe_splits, load_preset
from commbench.config.settings import preset_names
from commbench.console import make_console


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
    console = console or make_console()
    console.print(presets_table([load_preset(name) for name in preset_names()]))
    console.print(
        "world: the smallest world every swept group size divides (--nproc); in parentheses"
        " the serving tp, whose world runs dp groups at once as serving does."
    )
