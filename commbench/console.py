"""The one place commands make their rich console.

On a terminal rich fits the output to its width. Anywhere else (a pipe, a CI log, a
file) there is no width to fit: tables would be cut at rich's default of 80 columns
(`unsta…`, a row name over six lines), so the console is as wide as the widest line.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

# Wide enough for any table commbench draws; rich draws a table only as wide as its cells.
PIPE_WIDTH = 10_000


def make_console(**options: Any) -> Console:
    """A console for standard output (or `file=` in the options): a terminal's own width,
    else PIPE_WIDTH, so nothing is cut or wrapped."""
    console = Console(**options)
    if console.is_terminal:
        return console
    return Console(**{**options, "width": PIPE_WIDTH})
