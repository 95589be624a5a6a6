"""`commbench sweep`: time list vs tensor collectives over the configured points.

Its settings' flags are made from the config model (`commbench.config.flags`) and
added only when the sweep is the command being run (`SweepCommand`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from commbench.errors import UsageError


class SweepCommand:
    """A command that takes every setting of the config model as a flag
    (commbench.config.flags): `sweep`, and `ab`, which gives them to each launch.

    typer builds every registered command's flags on every call, and building the config
    model's costs `report`, `gate` and `--help` for flags they never parse; so the
    command line registers `with_settings(False)` for a command not being run, and the
    signature, with the settings or without, is made only when typer asks for it."""

    def __init__(self, command: Callable[..., None], settings: bool = True) -> None:
        functools.update_wrapper(self, command)
        self._command = command
        self._settings = settings

    def with_settings(self, settings: bool) -> SweepCommand:
        return SweepCommand(self._command, settings)

    def __call__(self, **values: Any) -> None:
        self._command(**values)

    @property
    def __signature__(self) -> inspect.Signature:
        fixed = inspect.signature(self._command).parameters.values()
        own = [p for p in fixed if p.kind is not inspect.Parameter.VAR_KEYWORD]
        if not self._settings:
            return inspect.Signature(own)
        from commbench.config.flags import parameters

        taken = {p.name for p in own}  # an own --out or --seed (ab's) replaces the setting
        return inspect.Signature([*own, *(p for p in parameters() if p.name not in taken)])


def sweep(
    config: Path | None = typer.Option(
        None,
        help="TOML file with the same keys as the flags, or the name of a shipped one"
        " (`ci`): `commbench configs` lists them.",
    ),
    preset: str | None = typer.Option(
        None,
        help="A model's serving shapes: configs/NAME.toml, a complete config, is the base"
        " instead of default.toml; flags still override; not with --config."
        " `commbench presets` lists them.",
    ),
    max_tokens: int | None = typer.Option(
        None,
        help="Reduced run for small machines: drop token counts above this, whichever"
        " layer (preset, config, flags) set them.",
    ),
    resume: Path | None = typer.Option(
        None,
        help="Finish an interrupted run: measure only what DIR lacks, with DIR's recorded"
        " config (flags given must agree with it).",
    ),
    force: bool = typer.Option(False, help="Replace an existing run in --out."),
    nccl_lib: Path | None = typer.Option(
        None,
        help="Run the workers with this libnccl.so preloaded (LD_PRELOAD): refused up front"
        " if torch cannot run on it, and every rank checks NCCL's calls resolve to it.",
    ),
    nproc: int | None = typer.Option(
        None, help="Without torchrun: start this many local ranks (default: GPUs, else 4)."
    ),
    dry_run: bool = typer.Option(
        False,
        help="Print the points, their message size and memory per rank and an estimated"
        " time for --nproc ranks (4 if not given); launch and write nothing.",
    ),
    **settings: Any,
) -> None:
    """Time list vs tensor collectives over tokens, hidden sizes, dtypes and dp x tp splits.

    Layers: default.toml < --config FILE, or --preset NAME alone; < flags; then --max-tokens.
    """
    from commbench.config.flags import overrides as flag_layer
    from commbench.config.settings import load_config
    from commbench.sweep.launch import is_launched

    overrides = flag_layer(settings)
    out = settings["out"]
    recorded = None
    if resume is not None:
        from commbench.rundir.resume import read_meta

        if out is not None or force:
            raise UsageError("resume: cannot be combined with --out or --force (DIR is the run)")
        recorded = read_meta(resume)
        overrides["out"] = str(resume)
    sweep_config = load_config(
        config,
        overrides,
        source="command line",
        preset=preset,
        max_tokens=max_tokens,
        recorded=recorded.config.model_dump() if recorded else None,
    )
    if dry_run:
        from commbench.output.dry_run import show_dry_run
        from commbench.sweep.dry_run import plan_dry_run

        world = recorded.world_size if recorded and nproc is None else nproc
        if resume is not None:  # refused as the resume itself would refuse it
            from commbench.sweep.backend import choose_backend
            from commbench.sweep.recorder import check_resumable

            check_resumable(resume, sweep_config, world, choose_backend(sweep_config.backend))
        if planned := plan_dry_run(sweep_config, world):
            guess = planned.estimate
            show_dry_run(
                sweep_config,
                planned.plan,
                (planned.world, planned.world_note),
                (guess.low, guess.high),
                planned.memory(),
            )
        raise typer.Exit(0)
    from commbench.sweep.start import launch_workers, run_as_worker

    if is_launched():
        from commbench.output.summary import show_finished_run

        code = run_as_worker(
            sweep_config,
            nproc,
            nccl_lib,
            resume=resume is not None,
            force=force,
            show=show_finished_run,
        )
    else:
        code = launch_workers(sweep_config, recorded, nproc, nccl_lib, resume=resume, force=force)
    raise typer.Exit(code)


COMMAND = SweepCommand(sweep)
