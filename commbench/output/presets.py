"""`commbench presets`: the model presets as a table (configs/NAME.toml with a [model]);
`commbench configs`: every shipped config, by the name `--config NAME` takes."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from commbench.config.presets import Preset, describe_splits, load_preset
from commbench.config.settings import CONFIG_DIR, preset_names, shipped_configs
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


def summary_of(text: str) -> str:
    """The first sentence of a config file's opening comment."""
    said = []
    for line in text.splitlines():
        if not line.startswith("#") or not line.lstrip("# ").strip():
            break
        said.append(line.lstrip("# ").strip())
    first, stop, _ = " ".join(said).partition(". ")
    return first + ("." if stop else "")


def show_configs(console: Console | None = None) -> None:
    """Every shipped config: its name and what its opening comment says."""
    console = console or make_console()
    table = Table(title="Shipped configs (commbench sweep --config NAME)")
    table.add_column("name", no_wrap=True)
    table.add_column("what", overflow="fold")
    for name in shipped_configs():
        table.add_row(name, summary_of((CONFIG_DIR / f"{name}.toml").read_text()))
    console.print(table)
    console.print(f"The files: {CONFIG_DIR}; a file of your own: --config PATH.")
