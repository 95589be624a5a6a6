"""Each sweep setting is declared once, in the config model: its flag, its TOML key and
its line in docs/usage.md's option table all follow from the field (or fail here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main
from support.paths import REPO

from commbench.cli import app
from commbench.config.flags import overrides, settings
from commbench.config.settings import load_config

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor

USAGE = REPO / "docs" / "usage.md"


def _sweep_flags() -> dict[str, str]:
    """The sweep command's flags as the CLI builds them: flag -> help."""
    command = typer.main.get_command(app).commands["sweep"]
    return {opt: param.help or "" for param in command.params for opt in param.opts}


def _documented_flags() -> set[str]:
    """Every flag the usage page's sweep option table names in its first column."""
    section = USAGE.read_text().split("\n## Options\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `--")]
    return {flag for row in rows for flag in re.findall(r"--[a-z][a-z-]*", row.split(" | ")[0])}


def test_every_setting_is_a_flag_with_the_models_description() -> None:
    flags = _sweep_flags()
    for setting in settings():
        assert flags.get(setting.flag) == setting.help, setting.flag
    names = [setting.name for setting in settings()]
    assert len(names) == len(set(names))  # one flag per name, whichever table holds it


def test_the_documented_option_table_lists_every_sweep_flag_and_no_other() -> None:
    flags = {flag for flag in _sweep_flags() if flag != "--help"}
    flags -= {flag for flag in flags if flag.startswith("--no-")}  # a switch's negative
    assert _documented_flags() == flags


def test_every_flag_lands_where_its_toml_key_does(tmp_path: Path) -> None:
    """The same values given as flags and as a TOML file make the same config."""
    given = {
        "tokens": "3,5", "dtypes": "float32", "vocab": "100", "experts": "8", "topk": "2",
        "skew": "0.5", "label": "flags", "warmup": "7", "max_bytes": "1MiB", "timeout": "9",
        "cuda_graph": True, "group_layout": "strided",
    }  # fmt: skip
    values = {setting.name: given.get(setting.name) for setting in settings()}
    values["cuda_graph"] = True
    values["profile_phases"] = False
    from_flags = load_config(overrides=overrides(values))
    toml = tmp_path / "same.toml"
    toml.write_text(
        'tokens = [3, 5]\ndtypes = ["float32"]\nvocab = [100]\nlabel = "flags"\n'
        'timeout = 9\nmax_bytes = "1MiB"\ncuda_graph = true\ngroup_layout = "strided"\n'
        "[timing]\nwarmup = 7\n[moe]\nexperts = [8]\ntopk = [2]\nskew = [0.5]\n"
    )
    assert from_flags == load_config(toml)
    assert from_flags.timing.warmup == 7 and from_flags.moe.skew == [0.5]
