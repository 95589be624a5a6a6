"""How workers are launched: torchrun, srun, or `commbench sweep --nproc N` itself.

Reading the launcher's environment needs no torch, so bad input is refused before torch
is imported. Without torchrun, `sweep --nproc N` uses PyTorch's own elastic launcher.

The workers are `python -m commbench sweep ...` with the same flags, started by the
same launch API that torchrun uses (standalone c10d rendezvous on a free local port),
so a local run behaves exactly like `torchrun --standalone --nproc-per-node N`.
"""

from __future__ import annotations

import os
import sys
import uuid

from commbench.faults import EXIT_INTERRUPTED

SLURM_TO_TORCH = {
    "SLURM_PROCID": "RANK",
    "SLURM_NTASKS": "WORLD_SIZE",
    "SLURM_LOCALID": "LOCAL_RANK",
}


def launcher_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """RANK / WORLD_SIZE / LOCAL_RANK from torchrun, or translated from an `srun` launch."""
    env = dict(os.environ if environ is None else environ)
    if "RANK" not in env and "SLURM_PROCID" in env:
        for slurm, torch_name in SLURM_TO_TORCH.items():
            if slurm in env:
                env[torch_name] = env[slurm]
    return env


def is_launched(environ: dict[str, str] | None = None) -> bool:
    """True inside a worker started by torchrun, the elastic launcher or srun."""
    env = launcher_env(environ)
    return "RANK" in env and "WORLD_SIZE" in env


def world_size_from_env() -> int:
    return int(launcher_env()["WORLD_SIZE"])


def default_nproc() -> int:
    """The number of local GPUs, else 4 gloo ranks on CPU."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 4


def launch_local(nproc: int, python_args: list[str]) -> int:
    """Run `nproc` workers of `python PYTHON_ARGS`; returns the first failing rank's code."""
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as torchrun does for several workers
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"commbench-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    try:
        elastic_launch(config, sys.executable)(*python_args)
    except ChildFailedError as err:
        failures = sorted(err.failures.items())  # by global rank
        return next((f.exitcode for _, f in failures if f.exitcode > 0), 1)
    except SignalException:  # Ctrl-C: the workers got it too, stopped cleanly and said so
        return EXIT_INTERRUPTED
    return 0
