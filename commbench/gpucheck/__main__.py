"""Which checks run on this machine, in what order, and the printed table at the end."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from commbench import gpucheck
from commbench.gpucheck.checks import (
    check_against_bare_loop,
    check_device_peak,
    check_exact,
    check_graph_first_sample,
    check_nccl_lib,
    check_stopped_rank,
)
from commbench.gpucheck.ranks import Runner
from commbench.gpucheck.verdict import EXIT_NO_GPU, NO_GPU, Check, exit_code, render

MAX_RANKS = 8
REPO = Path(__file__).resolve().parent.parent.parent


def gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_checks(
    gpus: int, nccl_lib: str | None, work: Path, say: Callable[[str], None]
) -> list[Check]:
    import torch

    run = Runner(work, REPO)
    ranks = min(gpus, MAX_RANKS)
    list_graphs = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 8)
    checks: list[Check] = []

    def add(found: Check | list[Check]) -> None:
        for check in found if isinstance(found, list) else [found]:
            checks.append(check)
            say(f"gpu-check: {check.name}: {check.verdict} ({check.measured})")

    add(check_device_peak())
    add(check_exact(run, ranks))
    shared_ok = None
    if gpus == 1:  # two ranks on the one GPU, for correctness only: does NCCL allow it?
        found = check_exact(run, 2, shared=True)
        add(found)
        shared_ok = found[0].passed
    add(check_graph_first_sample(run, ranks, list_graphs))
    add(check_against_bare_loop(run, ranks))
    if gpus >= 2 or shared_ok:
        add(check_stopped_rank(run, shared=gpus == 1))
    else:
        add(Check("SIGSTOPped rank", "exit 3, `stopped`", "needs two ranks: none here", None))
    add(check_nccl_lib(run, nccl_lib))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=gpucheck.__doc__.splitlines()[0])
    parser.add_argument("--nccl-lib", help="a second libnccl.so.2 (from an nvidia-nccl wheel)")
    args = parser.parse_args(argv)
    gpus = gpu_count()
    if gpus == 0:
        print(NO_GPU, file=sys.stderr)
        return EXIT_NO_GPU
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="commbench-gpucheck-") as work:
        checks = run_checks(gpus, args.nccl_lib, Path(work), lambda line: print(line, flush=True))
    print()
    print(render(checks))
    print(f"\ngpu-check: {gpus} GPU(s), {time.monotonic() - started:.0f} s")
    return exit_code(checks)


if __name__ == "__main__":
    sys.exit(main())
