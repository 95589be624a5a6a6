"""`commbench env`: what makes numbers comparable on this machine."""

from __future__ import annotations

import typer


def env(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """What makes numbers comparable here: versions, NCCL built vs loaded, GPUs, topology."""
    from commbench.env.probe import collect_all
    from commbench.output.env import show_env
    from commbench.sweep.backend import choose_backend

    show_env(collect_all(backend=choose_backend("auto")), as_json)
