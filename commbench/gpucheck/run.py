"""Which checks run on this machine, in what order and time, and the tables at the end."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from commbench import gpucheck
from commbench.errors import UsageError
from commbench.gpucheck.catalogue import ABOUT, LIMITS, WHOLE_RUN_S, cannot, checks_of
from commbench.gpucheck.ranks import Runner
from commbench.gpucheck.verdict import (
    EXIT_CANNOT_RUN,
    FAIL,
    NO_GPU,
    NOT_RUN,
    Check,
    exit_code,
    table,
)

MAX_RANKS = 8
REPO = Path(__file__).resolve().parent.parent.parent
KEEP_VAR = "COMMBENCH_GPUCHECK_KEEP"  # a directory: like --keep
Step = Callable[[Runner, float], list[Check]]


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def versions_line() -> str:
    """What gpu-check found: torch, CUDA, NCCL built and bound, typer, click, driver."""
    from commbench.env.probe import collect_gpus, collect_versions

    found, gpus = collect_versions(), collect_gpus()
    return (
        f"gpu-check: Python {found['python']}, torch {found['torch']}, CUDA {found['cuda']},"
        f" NCCL built {found['nccl_built']}, bound {found['nccl_runtime']}"
        f" ({found['nccl_path']}), typer {_version('typer')}, click {_version('click')},"
        f" driver {gpus['driver']}, {gpus['count']} GPU(s): {', '.join(gpus['names'])}"
    )


def steps(gpus: int, nccl_lib: str | None) -> list[tuple[str, Step]]:
    """The steps, in order. On one GPU every multi-rank step runs two ranks sharing it."""
    import torch

    from commbench.gpucheck.checks import (
        check_exact,
        check_gpu_bound,
        check_graph_replay,
        check_graph_sweep,
        check_huge,
    )
    from commbench.gpucheck.ncclcheck import check_nccl_lib
    from commbench.gpucheck.stopcheck import check_stopped_rank
    from commbench.sweep.backend import GRAPH_SAFE_LIST_TORCH

    ranks = min(gpus, MAX_RANKS)
    shared = gpus == 1
    world = 2 if shared else ranks
    lists = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (
        GRAPH_SAFE_LIST_TORCH
    )
    return [
        ("exact", lambda run, limit: check_exact(run, world, shared, limit)),
        ("out of memory", lambda run, limit: check_huge(run, world, shared, limit)),
        ("graph replay", lambda run, limit: check_graph_replay(run, world, shared, limit, lists)),
        (
            "cuda-graph sweep",
            lambda run, limit: check_graph_sweep(run, world, shared, limit, lists),
        ),
        ("gpu-bound timing", lambda run, limit: check_gpu_bound(run, ranks, limit)),
        ("stopped rank", lambda run, limit: [check_stopped_rank(run, shared, limit)]),
        ("nccl-lib", lambda run, limit: [check_nccl_lib(run, nccl_lib, limit)]),
    ]


def run_steps(
    plan: list[tuple[str, Step]],
    run: Runner,
    say: Callable[[str], None],
    whole_s: float = WHOLE_RUN_S,
    limits: dict[str, int] = LIMITS,
) -> list[Check]:
    """Each step within its own limit, none started that the whole run's limit would cut;
    a step that breaks FAILs its checks, its traceback kept in the work directory."""
    deadline = time.monotonic() + whole_s
    checks: list[Check] = []
    for step, check in plan:
        limit = limits[step]
        if time.monotonic() + limit > deadline:
            why = f"the whole run's {whole_s:g} s would be passed: not started"
            found = [Check(name, NOT_RUN, why) for name in checks_of(step)]
        else:
            try:
                found = check(run, limit)
            except Exception:
                log = run.next("broken").with_suffix(".log")
                log.write_text(traceback.format_exc())
                why = (
                    f"gpu-check itself broke: {traceback.format_exc().splitlines()[-1]}; log {log}"
                )
                found = [Check(name, FAIL, why) for name in checks_of(step)]
        for found_check in found:
            say(f"gpu-check: {found_check.name}: {found_check.status} ({found_check.measured})")
        checks += found
    return checks


def render(checks: list[Check], gpus: int) -> str:
    """The verdicts, then what each check proves and what it cannot on `gpus` GPU(s)."""
    verdicts = table(
        ("check", "status", "limit", "measured"),
        [(c.name, c.status, f"{LIMITS[ABOUT[c.name].step]} s", c.measured) for c in checks],
    )
    about = table(
        ("check", "proves", f"cannot on {gpus} GPU(s)"),
        [(c.name, ABOUT[c.name].proves, cannot(c.name, gpus)) for c in checks],
    )
    return f"{verdicts}\n\n{about}"


def work_dir(keep: str | None) -> Path:
    """The directory every run, config and rank log goes in: `keep`'s, else a new one."""
    if keep:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        if any(path.iterdir()):
            raise UsageError(f"keep: {path} is not empty (give a new directory)")
        return path
    return Path(tempfile.mkdtemp(prefix="commbench-gpucheck-"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=gpucheck.__doc__.splitlines()[0])
    parser.add_argument("--nccl-lib", help="a second libnccl.so.2 (from an nvidia-nccl wheel)")
    parser.add_argument(
        "--keep",
        default=os.environ.get(KEEP_VAR) or None,
        help=f"keep every run directory and rank log in this new directory (or ${KEEP_VAR})",
    )
    args = parser.parse_args(argv)
    gpus = gpu_count()
    if gpus == 0:
        print(NO_GPU, file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        work = work_dir(args.keep)
    except UsageError as err:
        print(f"gpu-check: {err}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    print(versions_line(), flush=True)
    started = time.monotonic()
    say = lambda line: print(line, flush=True)  # noqa: E731
    checks = run_steps(steps(gpus, args.nccl_lib), Runner(work, REPO), say)
    print(f"\n{render(checks, gpus)}\n")
    if args.keep or any(check.status == FAIL for check in checks):
        print(f"gpu-check: every run directory and rank log is in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"gpu-check: {gpus} GPU(s), {time.monotonic() - started:.0f} s")
    return exit_code(checks)
