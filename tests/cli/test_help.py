"""What a new user types first: --version, -h, and a --help that says what each sweep
flag takes and defaults to."""

from __future__ import annotations

import re

import pytest
from support.cli import commbench, commbench_here

import commbench as package
from commbench.catalogue import CATALOGUE
from commbench.config.flags import settings
from commbench.config.settings import load_config


def test_version() -> None:
    done = commbench("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"commbench {package.__version__}\n",
        "",
    )


@pytest.mark.parametrize("command", [[], ["report"], ["sweep"], ["gate"]])
def test_dash_h_is_help(command: list[str]) -> None:
    short, long = commbench_here(*command, "-h"), commbench_here(*command, "--help")
    assert short.returncode == long.returncode == 0, short.stderr
    assert short.stdout == long.stdout and "Usage:" in short.stdout


def _flag_lines(text: str) -> dict[str, str]:
    """--help's option table: flag -> its row and the rows wrapped under it."""
    rows: dict[str, str] = {}
    flag = None
    for line in text.splitlines():
        found = re.match(r"│ (--[a-z-]+)", line)
        if found:
            flag = found.group(1)
        if flag:
            rows[flag] = rows.get(flag, "") + " " + line.strip("│ ")
    return rows


def test_sweep_help_says_what_each_flag_takes_and_its_default() -> None:
    done = commbench_here("sweep", "--help")
    assert done.returncode == 0, done.stderr
    rows = _flag_lines(done.stdout)
    for setting in settings():  # the flags arrive as text, but none says <str>
        assert "<str>" not in rows[setting.flag], rows[setting.flag]
    expected = {"--tokens": "INTS", "--hidden": "INTS", "--skew": "FLOATS", "--rounds": "INT",
                "--target-ci": "FLOAT", "--max-bytes": "SIZE", "--backend": "NAME",
                "--collectives": "NAMES", "--label": "TEXT"}  # fmt: skip
    for flag, metavar in expected.items():
        assert f" {metavar} " in rows[flag], rows[flag]
    default = load_config()
    assert f"[default: ({', '.join(map(str, default.tokens))})]" in " ".join(
        rows["--tokens"].split()
    )
    assert f"[default: ({default.timing.target_ci})]" in rows["--target-ci"]
    assert "[default: (300" in rows["--timeout"]  # the model's own default
    words = " ".join(rows["--collectives"].split())
    for name in CATALOGUE:  # every valid name, none cut off
        assert name in words
    assert "…" not in done.stdout
