"""The command line. Thin: parse, validate, call; each command imports what it needs.

Commands that only read results never import torch. The sweep's flags arrive as text
and the config's pydantic model converts them, so a bad flag and the same bad value in
a config file get the same one-line error, value included.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from commbench.errors import UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Collective-communication microbenchmark: list vs tensor all_gather / reduce_scatter.",
)


def _forwarded_args(out: str | None) -> list[str]:
    """The sweep's own flags for the workers, without --nproc and with the chosen --out
    (none when resuming: the run directory is the one to resume)."""
    args, skip = [], False
    for arg in sys.argv[sys.argv.index("sweep") + 1 :]:
        if skip:
            skip = False
        elif arg in ("--nproc", "--out"):
            skip = True
        elif not arg.startswith(("--nproc=", "--out=")):
            args.append(arg)
    return args if out is None else [*args, "--out", out]


@app.command()
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
    tokens: str | None = typer.Option(None, help="Token counts per group, e.g. 1,128,1024."),
    hidden: str | None = typer.Option(None, help="Hidden sizes, e.g. 4096,7168."),
    vocab: str | None = typer.Option(
        None, help="Vocabulary sizes for logits_gather, e.g. 129280,128257."
    ),
    dtypes: str | None = typer.Option(None, help="bfloat16,float16,float32."),
    tp: str | None = typer.Option(
        None, help="Group sizes (attn_tp); dp = world / tp. Default: every divisor above 1."
    ),
    collectives: str | None = typer.Option(None, help="all_gather,reduce_scatter,all_reduce."),
    variants: str | None = typer.Option(None, help="list,tensor,padded."),
    experts: str | None = typer.Option(
        None, help="all_to_all: routed experts, e.g. 256 (experts / tp per rank)."
    ),
    topk: str | None = typer.Option(None, help="all_to_all: experts per token, e.g. 8."),
    skew: str | None = typer.Option(
        None, help="all_to_all: Zipf exponent of expert popularity, e.g. 0,1.2 (0: uniform)."
    ),
    backend: str | None = typer.Option(None, help="auto | nccl | gloo."),
    out: str | None = typer.Option(None, help="Run directory. Default results/<time>[-label]."),
    label: str | None = typer.Option(None, help="Name of this run in reports and comparisons."),
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
    rounds: str | None = typer.Option(
        None, help="Run the plan this many times, each round in a new seeded order."
    ),
    seed: str | None = typer.Option(None, help="Seed of the rounds' order."),
    warmup: str | None = typer.Option(None, help="Untimed operations before each point."),
    min_sample_ms: str | None = typer.Option(
        None, help="K is chosen so one sample lasts at least this long."
    ),
    max_iters: str | None = typer.Option(None, help="Upper bound on K."),
    min_samples: str | None = typer.Option(None, help="Samples per point, at least."),
    max_samples: str | None = typer.Option(None, help="Samples per point, at most."),
    target_ci: str | None = typer.Option(
        None, help="Stop once the 95% CI of the median is within +-this (relative)."
    ),
    max_seconds: str | None = typer.Option(None, help="Time budget per point and round."),
    group_layout: str | None = typer.Option(
        None,
        help="contiguous: groups of consecutive ranks (SGLang's, default); strided: rank r"
        " joins group r % dp, so each group spans the nodes.",
    ),
    timeout: str | None = typer.Option(
        None,
        help="Seconds a collective may go without completing before the run is ended as"
        " hung (a dead or stuck peer). Default 300.",
    ),
    cuda_graph: bool = typer.Option(
        False,
        help="Capture K operations once per point and replay them (how decode runs); NCCL on"
        " CUDA GPUs only.",
    ),
    profile_phases: bool = typer.Option(
        False, help="Print where the points' time went (always recorded in meta.json)."
    ),
    max_bytes: str | None = typer.Option(
        None,
        help="Skip points whose buffers (with a list form's hidden flat copy) need more than"
        " this per rank (e.g. 512MiB, 8GB); every rank agrees, the row says skipped.",
    ),
) -> None:
    """Time list vs tensor collectives over tokens, hidden sizes, dtypes and dp x tp splits.

    Layers: default.toml < --config FILE, or --preset NAME alone; < flags; then --max-tokens.
    """
    from commbench.config import check_backend, load_config, split_list
    from commbench.launch import is_launched

    overrides = {
        "tokens": split_list(tokens),
        "hidden": split_list(hidden),
        "vocab": split_list(vocab),
        "dtypes": split_list(dtypes),
        "tp": split_list(tp),
        "collectives": split_list(collectives),
        "variants": split_list(variants),
        "moe": {"experts": split_list(experts), "topk": split_list(topk), "skew": split_list(skew)},
        "backend": backend,
        "out": out,
        "label": label,
        "rounds": rounds,
        "seed": seed,
        "group_layout": group_layout,
        "timeout": timeout,
        "max_bytes": max_bytes,
        "cuda_graph": cuda_graph or None,
        "profile_phases": profile_phases or None,
        "timing": {
            "warmup": warmup,
            "min_sample_ms": min_sample_ms,
            "max_iters": max_iters,
            "min_samples": min_samples,
            "max_samples": max_samples,
            "target_ci": target_ci,
            "max_seconds": max_seconds,
        },
    }
    recorded = None
    if resume is not None:
        from commbench.progress import read_meta

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
        recorded=recorded and recorded["config"],
    )
    if is_launched():
        if nproc is not None:
            raise UsageError("nproc: cannot be used under torchrun or srun (the launcher decides)")
        if nccl_lib is not None:  # preloaded by the launcher (or not): verified, not loaded
            _check_preloaded_worker(nccl_lib)
        from commbench.runner import run_sweep

        raise typer.Exit(run_sweep(sweep_config, resume=resume is not None, force=force))

    from commbench.launch import default_nproc, launch_local
    from commbench.results import check_new_run_dir, default_run_dir

    if nproc is None:  # a resumed run needs the world it was measured with
        nproc = recorded["world_size"] if recorded else default_nproc()
    world = nproc
    if world < 1:
        raise UsageError(f"nproc: must be at least 1 (got {world})")
    run_dir = sweep_config.out or str(default_run_dir(sweep_config.label))
    if resume is None:  # before importing torch (the plan's catalogue does): said at once
        check_new_run_dir(Path(run_dir), force)
    from commbench.plan import build_plan

    build_plan(sweep_config, world)  # validate against the world before starting any worker
    from commbench.groups import check_gpu_count, choose_backend, sharing_allowed

    backend = choose_backend(sweep_config.backend)
    check_backend(sweep_config, backend)
    versions = None  # the workers' versions: with --nccl-lib, not this process's
    if nccl_lib is not None:
        from commbench.nccl import preload_env
        from commbench.ncclcheck import check_compatible

        versions = check_compatible(nccl_lib, os.environ)
        os.environ.update(preload_env(nccl_lib, os.environ))  # the workers inherit it
    if backend == "nccl":
        import torch

        check_gpu_count(world, torch.cuda.device_count(), sharing_allowed())
    if resume is not None:
        from commbench.recorder import check_resumable

        check_resumable(resume, sweep_config, world, backend, versions)
    forwarded = _forwarded_args(None if resume else run_dir)
    raise typer.Exit(launch_local(world, ["-m", "commbench", "sweep", *forwarded]))


def _check_preloaded_worker(nccl_lib: Path) -> None:
    """A worker's side of `--nccl-lib`, before `import torch` could die of the library:
    it can serve torch (every rank says the same line if not), and it is preloaded. Under
    torchrun or srun nothing preloaded it (preloading torchrun itself would hand it to the
    agent's own `import torch`): the worker then executes itself again with the library
    first in LD_PRELOAD, the same process to its launcher. The runner then checks that
    NCCL's calls resolve to it."""
    from commbench.nccl import NCCL_LIB_VAR, preload_env, preloaded_first
    from commbench.ncclcheck import check_preloadable

    version = check_preloadable(nccl_lib)
    if not preloaded_first(nccl_lib, os.environ):
        sys.stdout.flush()
        sys.stderr.flush()
        argv = [sys.executable, "-m", "commbench", *sys.argv[1:]]
        os.execve(sys.executable, argv, preload_env(nccl_lib, os.environ))
    os.environ[NCCL_LIB_VAR] = str(nccl_lib.resolve())
    try:
        import torch  # noqa: F401
    except (ImportError, OSError) as err:
        said = str(err).strip().splitlines()
        raise UsageError(
            f"nccl-lib: torch does not import with '{nccl_lib}' (NCCL {version}) preloaded:"
            f" {said[0] if said else type(err).__name__}"
        ) from err


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
    from rich.console import Console

    from commbench.export.jsonfile import gate_json
    from commbench.export.junit import gate_junit
    from commbench.export.markdown import gate_markdown
    from commbench.export.terminal import render_gate
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
    render_gate(result, Console())
    report = gate_markdown(result)
    if markdown:
        markdown.write_text(report)
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a") as handle:
            handle.write(report)
    if junit:
        gate_junit(result, junit)
    if json:
        gate_json(result, json)
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

    run_compare(runs, split_labels(labels), markdown, csv)


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
    from commbench.results import read_run

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
    try:
        sys.exit(app(args=sys.argv[1:] or ["--help"], standalone_mode=False) or 0)
    except UsageError as err:
        print(f"commbench: error: {err}", file=sys.stderr)
        sys.exit(2)
    except ClickException as err:  # the flags' parser: unknown option, wrong type, ...
        print(f"commbench: error: {err.format_message()}", file=sys.stderr)
        sys.exit(err.exit_code)
