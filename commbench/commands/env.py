"""`commbench env`: what makes numbers comparable on this machine."""

from __future__ import annotations

import typer


def env(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """What makes numbers comparable here: versions, NCCL built vs loaded, GPUs, topology."""
    from commbench.env.show import show_env

    show_env(as_json)
