"""The command line. Thin: parse, validate, call; each command imports what it needs.

Commands that only read results never import torch. The sweep's flags arrive as text
and the config's pydantic model converts them, so a bad flag and the same bad value in
a config file get the same one-line error, value included.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from commbench.errors import ExitCode, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Collective-communication microbenchmark: list vs tensor all_gather / reduce_scatter.",
)


class _WithSettingFlags:
    """The sweep command with one flag per setting of the config model (sweepflags.py).

    Its signature is made when typer builds the command, and has the settings' flags only
    when the sweep is the command being run (`wanted`, set by `main`; True when it is not
    known): typer builds every command's flags on every call, and building the config
    model's would cost `report`, `gate` and `--help` for flags they never parse."""

    def __init__(self, command: Callable[..., None]) -> None:
        functools.update_wrapper(self, command)
        self._command = command
        self.wanted = True

    def __call__(self, **values: Any) -> None:
        self._command(**values)

    @property
    def __signature__(self) -> inspect.Signature:
        fixed = inspect.signature(self._command).parameters.values()
        own = [p for p in fixed if p.kind is not inspect.Parameter.VAR_KEYWORD]
        if not self.wanted:
            return inspect.Signature(own)
        from commbench.sweepflags import parameters

        return inspect.Signature([*own, *parameters()])


def sweep(
    config: Path | None = typer.Option(None, help="TOML file with the same keys as the flags."),
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
    **settings: Any,
) -> None:
    """Time list vs tensor collectives over tokens, hidden sizes, dtypes and dp x tp splits.

    Layers: default.toml < --config FILE, or --preset NAME alone; < flags; then --max-tokens.
    """
    from commbench.config import load_config
    from commbench.launch import is_launched
    from commbench.sweepflags import overrides as flag_layer

    overrides = flag_layer(settings)
    out = settings["out"]
    recorded = None
    if resume is not None:
        from commbench.resume import read_meta

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
        recorded=recorded.config if recorded else None,
    )
    from commbench.sweepstart import launch_workers, run_as_worker

    if is_launched():
        code = run_as_worker(sweep_config, nproc, nccl_lib, resume=resume is not None, force=force)
    else:
        code = launch_workers(sweep_config, recorded, nproc, nccl_lib, resume=resume, force=force)
    raise typer.Exit(code)


_SWEEP = _WithSettingFlags(sweep)
app.command(name="sweep")(_SWEEP)


@app.command()
def presets() -> None:
    """The model presets for `sweep --preset NAME`: shapes, splits, worlds (no torch)."""
    from commbench.presets import show_presets

    show_presets()


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by sweep."),
    markdown: Path | None = typer.Option(
        None, help="Also write the summary, environment and tables here, for a GitHub issue."
    ),
) -> None:
    """Re-render a run's summary from its files (does not import torch)."""
    from commbench.report import render_run

    run = render_run(run_dir)
    if markdown:
        from commbench.export.runreport import run_markdown

        try:
            markdown.write_text(run_markdown(run))
        except OSError as err:
            raise UsageError(
                f"markdown: {str(markdown)!r} cannot be written: {err.strerror}"
            ) from None


@app.command()
def gate(
    runs: list[Path] = typer.Argument(
        ...,
        help="BASELINE... CURRENT: one or more baseline runs (or directories of runs, a "
        "history), then the current run.",
    ),
    tolerance: float | None = typer.Option(
        None, help="Relative change a row may show before it can regress (default per backend)."
    ),
    aggregate_tolerance: float | None = typer.Option(
        None, help="The same for the geometric mean over a collective's rows."
    ),
    rules: Path | None = typer.Option(None, help="TOML file of per-row tolerances."),
    allow_missing: bool = typer.Option(False, help="Rows missing from CURRENT do not fail."),
    allow_mismatch: bool = typer.Option(False, help="Compare even if versions/config differ."),
    markdown: Path | None = typer.Option(None, help="Write a markdown report here."),
    junit: Path | None = typer.Option(None, help="Write JUnit XML here (one testcase per row)."),
    json: Path | None = typer.Option(None, help="Write the full verdict as JSON here."),
) -> None:
    """Exit 0 if CURRENT has no regression against BASELINE, 1 if it has, 3 if not comparable."""
    from commbench.export.outputs import write_gate
    from commbench.gate import run_gate
    from commbench.rules import load_rules

    if len(runs) < 2:
        raise UsageError("runs: need at least a BASELINE and a CURRENT run directory")
    for name, value in (("tolerance", tolerance), ("aggregate-tolerance", aggregate_tolerance)):
        if value is not None and not 0 < value < 10:
            raise UsageError(f"{name}: must be a positive fraction such as 0.05 (got {value})")
    result = run_gate(
        runs[:-1],
        runs[-1],
        tolerance=tolerance,
        aggregate_tolerance=aggregate_tolerance,
        rules=load_rules(rules),
        allow_missing=allow_missing,
        allow_mismatch=allow_mismatch,
    )
    write_gate(result, markdown, junit, json)
    raise typer.Exit(result.exit_code)


@app.command()
def env(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """What makes numbers comparable here: versions, NCCL built vs loaded, GPUs, topology."""
    from commbench.envreport import show_env

    show_env(as_json)


@app.command()
def compare(
    runs: list[Path] = typer.Argument(..., help="Run directories; the first is the reference."),
    labels: str | None = typer.Option(None, help="Comma-separated labels, one per run."),
    markdown: Path | None = typer.Option(None, help="Write a markdown report here."),
    csv: Path | None = typer.Option(None, help="Write the per-row table as CSV here."),
) -> None:
    """Side by side: each run's medians and ratios to the first, with significance."""
    from commbench.compare import run_compare
    from commbench.export.outputs import write_compare

    write_compare(run_compare(runs, split_labels(labels)), markdown, csv)


@app.command()
def plot(
    runs: list[Path] = typer.Argument(..., help="One or more run directories."),
    out: Path | None = typer.Option(None, help="Directory for the images (default: the run's)."),
    format: str = typer.Option("png", help="png or svg."),
) -> None:
    """Bandwidth and time against size per collective and split, and speedup heatmaps."""
    from commbench.plot import plot_runs

    for path in plot_runs(runs, out, format):
        print(path)


@app.command()
def export(
    runs: list[Path] = typer.Argument(..., help="One or more run directories."),
    format: str = typer.Option(
        ...,
        help="bencher: Bencher Metric Format JSON (bencher run --adapter json); github:"
        " github-action-benchmark's customSmallerIsBetter list.",
    ),
    out: Path | None = typer.Option(None, help="Write here instead of standard output."),
) -> None:
    """Every measured row as a benchmark tracker reads it; skipped and failed rows are
    left out (said on standard error)."""
    from commbench.export import measured_rows
    from commbench.export.bencher import bencher_json
    from commbench.export.github import github_json
    from commbench.runreader import read_run

    formats = {"bencher": bencher_json, "github": github_json}
    if format not in formats:
        raise UsageError(f"format: must be one of {', '.join(formats)} (got {format!r})")
    measured, left_out = measured_rows([read_run(path) for path in runs])
    if left_out:
        counts = ", ".join(f"{n} {check}" for check, n in sorted(left_out.items()))
        print(f"commbench: export: left out {sum(left_out.values())} row(s) not measured"
              f" ({counts})", file=sys.stderr)  # fmt: skip
    text = formats[format](measured)
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            out.write_text(text)
        except OSError as err:
            raise UsageError(f"out: {str(out)!r} cannot be written: {err.strerror}") from None


def split_labels(labels: str | None) -> list[str] | None:
    return None if labels is None else [label.strip() for label in labels.split(",")]


try:  # typer >= 0.22 parses with its own copy of click, older ones with click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException


def main() -> None:
    """Every bad input, the flags' own parsing included, ends as one line and exit code 2.
    Every rank says it: a launcher may kill the others before rank 0 gets to print."""
    args = sys.argv[1:] or ["--help"]
    _SWEEP.wanted = next((arg for arg in args if not arg.startswith("-")), None) == "sweep"
    try:
        sys.exit(app(args=args, standalone_mode=False) or 0)
    except UsageError as err:
        print(f"commbench: error: {err}", file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    except ClickException as err:  # the flags' parser: unknown option, wrong type, ...
        print(f"commbench: error: {err.format_message()}", file=sys.stderr)
        sys.exit(err.exit_code)
    finally:
        _SWEEP.wanted = True  # whoever builds the app next (a test, a caller) gets every flag
