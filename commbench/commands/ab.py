"""`commbench ab`: the same sweep under two or more arms, interleaved launches, sampled
until every interval decides (docs/ab.md).

Every sweep flag is accepted and given to every launch, made from the config model as
the sweep's are (`SweepCommand`); `--out` and `--seed` are the experiment's own (the
sweep's own seed comes from --config)."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from commbench.commands.sweep import SweepCommand
from commbench.errors import UsageError

if TYPE_CHECKING:
    from commbench.ab.design import ExperimentDesign

DESIGN_FLAGS = ("arm", "arms", "out", "band", "min_pairs", "seed", "launcher")


def ab(
    arm: list[str] = typer.Option(
        [],
        "--arm",
        help="NAME (the reference, first) or NAME:KEY=VALUE[,KEY=VALUE...]; KEY is nccl-lib,"
        " python or an environment variable's NAME. Repeat for each arm.",
    ),
    arms: Path | None = typer.Option(
        None, help="TOML file of arms, one `arm` table each (name, nccl-lib, python, env)."
    ),
    out: Path | None = typer.Option(None, help="The experiment directory (new)."),
    resume: Path | None = typer.Option(
        None,
        help="Continue the experiment in DIR with its own design (after Ctrl-C, or a budget"
        " end: with a larger --max-pairs it is extended, the same experiment).",
    ),
    band: float | None = typer.Option(
        None, help="Equivalence band: a ratio within [1/(1+F), 1+F] is no change (default 0.05)."
    ),
    min_pairs: int | None = typer.Option(
        None,
        help="Pairs at the first look, even; then two pairs later and at 10 (default 4).",
    ),
    max_pairs: int | None = typer.Option(
        None,
        help="Pairs at most per arm, even (default 10); past 10, looks at every even count"
        " are judged by the confidence sequence. With --resume: raise it to extend.",
    ),
    max_minutes: float | None = typer.Option(
        None, help="Stop starting launches that would end after this many minutes."
    ),
    seed: int | None = typer.Option(
        None, help="Seed of the launch order (default: drawn, recorded)."
    ),
    launcher: str | None = typer.Option(
        None,
        help="Multi-node: a shell line that starts one launch's ranks, with {command} where"
        " each rank's command goes, e.g. 'srun -N2 --ntasks-per-node=4 {command}'.",
    ),
    launch_timeout: float | None = typer.Option(
        None, help="Seconds after which a launch is a hang (default 3600; --resume may change it)."
    ),
    markdown: Path | None = typer.Option(
        None, help="Write a markdown report (an NCCL bug report) here."
    ),
    config: Path | None = typer.Option(None, help="The sweep's TOML config, for every launch."),
    preset: str | None = typer.Option(None, help="The sweep's --preset, for every launch."),
    max_tokens: int | None = typer.Option(None, help="The sweep's --max-tokens, for every launch."),
    nproc: int | None = typer.Option(None, help="Local ranks per launch (as sweep --nproc)."),
    **settings: Any,
) -> None:
    """Interleaved A/B launches of one sweep until each arm's ratio to the first decides."""
    from commbench.ab.experiment import Experiment, run_experiment
    from commbench.output.ab import print_progress
    from commbench.paths import check_files

    check_files({"markdown": markdown})  # before the launches, not after them
    given = {k: v for k, v in locals().items() if k in DESIGN_FLAGS and v not in (None, [])}
    if resume is not None:
        changed = sorted(given) + sorted(k for k, v in settings.items() if v not in (None, False))
        if changed or config or preset or max_tokens or nproc:
            what = changed[0] if changed else "sweep flags"
            raise UsageError(f"resume: {what} cannot be given; the experiment keeps its design")
        experiment = Experiment.open(resume)
        changes = {"launch_timeout_s": launch_timeout, "max_pairs": max_pairs}
        experiment.change(**{k: v for k, v in changes.items() if v is not None})
    else:
        if out is None:
            raise UsageError("out: an experiment needs its directory (--out DIR)")
        design = _design(
            arm,
            arms,
            dict(
                band=band,
                min_pairs=min_pairs,
                max_pairs=max_pairs,
                seed=random.SystemRandom().randrange(2**31) if seed is None else seed,
                nproc=nproc,
                launcher=launcher,
                launch_timeout_s=launch_timeout,
                sweep_args=_sweep_args(config, preset, max_tokens, settings),
                argv=["commbench", *sys.argv[1:]],
            ),
        )
        experiment = Experiment.create(out, design)
    code = run_experiment(experiment, max_minutes, print_progress)
    write_outputs(experiment.root, experiment.state, markdown)
    raise typer.Exit(code)


def write_outputs(root: Path, state: dict[str, Any], markdown: Path | None) -> None:
    """The terminal summary, the plot beside experiment.json, and --markdown."""
    from commbench.output.ab import markdown_text, summary_lines

    print("\n".join(summary_lines(root, state)))
    if state["result"] and state["result"]["estimates"]:
        from commbench.output.ab_plot import save_plot

        print(f"Plot: {save_plot(state, root / 'ab.png')}")
    if markdown is not None:
        markdown.write_text(markdown_text(root, state))
        print(f"Markdown: {markdown}")


def _sweep_args(
    config: Path | None, preset: str | None, max_tokens: int | None, settings: dict[str, Any]
) -> list[str]:
    """The launches' sweep flags, validated here as the sweep would (one line, exit 2)."""
    from commbench.config.flags import overrides
    from commbench.config.flags import settings as all_settings
    from commbench.config.settings import config_file, load_config

    layer = overrides({**settings, "out": None, "seed": None})
    load_config(config, layer, source="command line", preset=preset, max_tokens=max_tokens)
    args = ["--config", str(config_file(config).resolve())] if config else []
    args += ["--preset", preset] if preset else []
    args += ["--max-tokens", str(max_tokens)] if max_tokens is not None else []
    for setting in all_settings():
        value = settings.get(setting.name)
        if setting.is_switch and value:
            args.append(setting.flag)
        elif not setting.is_switch and value is not None:
            args += [setting.flag, str(value)]
    return args


def _design(arm: list[str], arms: Path | None, values: dict[str, Any]) -> ExperimentDesign:
    """The design from the flags (the model checks them), after the arms: each refused
    in one line before the first launch."""
    from commbench.ab.arms import check_arms, parse_flag, read_arms_file
    from commbench.ab.design import ExperimentDesign
    from commbench.sweep.launch import is_launched

    if is_launched():
        raise UsageError("ab: run it without torchrun or srun (--launcher starts each launch)")
    design = ExperimentDesign.from_flags({"arms": [], **values})
    chosen = [parse_flag(text) for text in arm] + (read_arms_file(arms) if arms else [])
    check_arms(chosen)
    return design.model_copy(update={"arms": [a.record() for a in chosen]})


COMMAND = SweepCommand(ab)
