"""How a sweep starts once its config is loaded: as a worker under torchrun or srun (the
`--nccl-lib` re-exec included), or as the launcher of `--nproc` local workers.

Everything that can be refused is refused before the workers start, and before torch is
imported where the check needs none; torch and the runner are imported where needed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from commbench.config.settings import SweepConfig
from commbench.errors import ExitCode, UsageError
from commbench.rundir.meta import RunMeta
from commbench.rundir.schema import META_JSON
from commbench.sweep.faults import interrupted_early

if TYPE_CHECKING:
    from commbench.sweep.recorder import ShowRun


def run_as_worker(
    config: SweepConfig,
    nproc: int | None,
    nccl_lib: Path | None,
    *,
    resume: bool,
    force: bool,
    show: ShowRun | None = None,
) -> int:
    """This process is one rank its launcher started: measure; `show` shows the finished
    run on rank 0."""
    from commbench.sweep.launch import check_rendezvous, die_with_launcher, launched_here

    if launched_here():
        die_with_launcher()

    if nproc is not None:
        raise UsageError("nproc: cannot be used under torchrun or srun (the launcher decides)")
    check_rendezvous()
    if nccl_lib is not None:  # preloaded by the launcher (or not): verified, not loaded
        _check_preloaded_worker(nccl_lib)
    from commbench.sweep.runner import run_sweep

    return run_sweep(config, resume=resume, force=force, show=show)


def launch_workers(
    config: SweepConfig,
    recorded: RunMeta | None,
    nproc: int | None,
    nccl_lib: Path | None,
    *,
    resume: Path | None,
    force: bool,
) -> int:
    """No launcher: validate what the workers would refuse, then start them here. A
    signal before any worker recorded the run is said in one line (what happened, that
    nothing was measured, what became of the directory)."""
    from commbench.rundir.writer import default_run_dir

    run_dir = Path(config.out or default_run_dir(config.label))
    meta = run_dir / META_JSON
    existed, before = run_dir.exists(), meta.read_bytes() if meta.exists() else None
    try:
        code = _launch_workers(config, recorded, nproc, nccl_lib, run_dir, resume, force)
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    if code == ExitCode.INTERRUPTED and (meta.read_bytes() if meta.exists() else None) == before:
        print(interrupted_early(run_dir, existed), file=sys.stderr)
    return code


def _launch_workers(
    config: SweepConfig,
    recorded: RunMeta | None,
    nproc: int | None,
    nccl_lib: Path | None,
    run_dir: Path,
    resume: Path | None,
    force: bool,
) -> int:
    from commbench.rundir.writer import check_new_run_dir
    from commbench.sweep.launch import LAUNCHER_ARGV, default_nproc, launch_local

    if nproc is None:  # a resumed run needs the world it was measured with
        nproc = recorded.world_size if recorded else default_nproc()
    world = nproc
    if world < 1:
        raise UsageError(f"nproc: must be at least 1 (got {world})")
    if resume is None:  # before importing torch (the plan's catalogue does): said at once
        check_new_run_dir(run_dir, force)
    from commbench.sweep.plan import build_plan

    build_plan(config, world)  # validate against the world before starting any worker
    from commbench.sweep.backend import (
        check_backend,
        check_gpu_count,
        choose_backend,
        sharing_allowed,
    )

    backend = choose_backend(config.backend)
    check_backend(config, backend)
    versions = None  # the workers' versions: with --nccl-lib, not this process's
    if nccl_lib is not None:
        from commbench.env.preload import check_compatible, preload_env

        versions = check_compatible(nccl_lib, os.environ)
        os.environ.update(preload_env(nccl_lib, os.environ))  # the workers inherit it
    gpus = 0
    if backend == "nccl":
        import torch

        gpus = torch.cuda.device_count()
        check_gpu_count(world, gpus, sharing_allowed())
    if resume is not None:
        from commbench.rundir.lock import check_unlocked
        from commbench.sweep.recorder import check_resumable

        check_unlocked(resume, "resume")
        check_resumable(resume, config, world, backend, versions)
    from commbench.sweep.memory import crowding

    if warning := crowding(world, backend, gpus):  # now: the workers' words come at the end
        print(warning, file=sys.stderr)
    forwarded = _forwarded_args(None if resume else str(run_dir))
    os.environ[LAUNCHER_ARGV] = json.dumps(sys.argv[1:])  # what meta.json records
    try:
        return launch_local(world, ["-m", "commbench", "sweep", *forwarded])
    finally:
        del os.environ[LAUNCHER_ARGV]


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


def _check_preloaded_worker(nccl_lib: Path) -> None:
    """A worker's side of `--nccl-lib`, before `import torch` could die of the library:
    it can serve torch (every rank says the same line if not), and it is preloaded. Under
    torchrun or srun nothing preloaded it (preloading torchrun itself would hand it to the
    agent's own `import torch`): the worker then executes itself again with the library
    first in LD_PRELOAD, the same process to its launcher. The runner then checks that
    NCCL's calls resolve to it."""
    from commbench.env.preload import NCCL_LIB_VAR, check_preloadable, preload_env, preloaded_first

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
