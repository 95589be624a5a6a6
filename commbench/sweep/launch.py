"""How workers are launched: torchrun, srun, or `commbench sweep --nproc N` itself.

Reading the launcher's environment needs no torch, so bad input is refused before torch
is imported. Without torchrun, `sweep --nproc N` uses PyTorch's own elastic launcher.

The workers are `python -m commbench sweep ...` with the same flags, started by the
same launch API that torchrun uses (standalone c10d rendezvous on a free local port),
so a local run behaves exactly like `torchrun --standalone --nproc-per-node N`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import TextIO

from commbench.errors import ExitCode, UsageError

# The command the user typed on `sweep --nproc N`, as JSON, for the workers' meta.json: a
# worker's own argv lacks --nproc (the launcher decides the world) and names its --out.
LAUNCHER_ARGV = "COMMBENCH_LAUNCHER_ARGV"

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


def check_rendezvous(environ: dict[str, str] | None = None) -> None:
    """torchrun sets MASTER_ADDR and MASTER_PORT; srun does not: the recipe, said before
    the rank spends seconds importing torch."""
    env = launcher_env(environ)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in env:
            raise UsageError(
                f"{name}: not set; under srun export MASTER_ADDR (the first node's address)"
                " and MASTER_PORT (a free port) before launching, see docs/usage.md's SLURM recipe"
            )


# The launcher's pid, which `sweep --nproc` gives its workers: how a worker knows that
# commbench itself launched it (that `--nproc N` relaunches its world), and that its
# launcher is gone (an orphan's parent is init or a subreaper, `ab` is one).
LAUNCHER_PID = "COMMBENCH_LAUNCHER_PID"


def launched_here(environ: dict[str, str] | None = None) -> bool:
    """True in a worker that `sweep --nproc` started (not torchrun, not srun)."""
    return LAUNCHER_PID in (os.environ if environ is None else environ)


def die_with_launcher() -> None:
    """In a worker of `sweep --nproc`: end (SIGTERM) when the launcher does. The launcher
    starts each worker in a session of its own, so a Ctrl-C reaches the workers only
    through it; one that lands while it is still starting them can end it before it
    stops them all, and a worker left behind would wait for its peers for --timeout."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != os.environ.get(LAUNCHER_PID):  # it ended before the request
        os.kill(os.getpid(), signal.SIGTERM)


def world_size_from_env() -> int:
    return int(launcher_env()["WORLD_SIZE"])


def default_nproc() -> int:
    """The number of local GPUs, else 4 gloo ranks on CPU."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 4


def relay_worker_stderr(log_dir: Path, out: TextIO, prefix: str = "") -> set[int]:
    """Every worker's standard error (its lines that start with `prefix`), each distinct
    line once, in rank order: what every rank refuses alike (bad input, an unwritable
    --out) reaches the user once, not glued together from several ranks. Returns the
    ranks that wrote anything."""
    said: set[str] = set()  # by lower ranks: a rank's own repeated lines (a traceback's) stay
    speakers: set[int] = set()
    for path in sorted(log_dir.glob("**/stderr.log"), key=lambda p: int(p.parent.name)):
        text = path.read_text(errors="replace")
        lines = [line for line in text.splitlines() if line.strip() and line.startswith(prefix)]
        for line in lines:
            if line not in said:
                print(line, file=out)
        said.update(lines)
        if lines:
            speakers.add(int(path.parent.name))
    return speakers


def launch_local(nproc: int, python_args: list[str]) -> int:
    """Run `nproc` workers of `python PYTHON_ARGS`; returns the first failing rank's code.

    Rank 0's standard output (the progress and summary) is the terminal's; the workers'
    standard error is collected and relayed once at the end, and the launcher's own log
    lines (which process got SIGTERM, which failed) are silenced: the exit code and the
    workers' own words say it. A rank that died without a word is named.
    """
    from torch.distributed.elastic.multiprocessing import SignalException, Std
    from torch.distributed.elastic.multiprocessing.api import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as torchrun does for several workers
    with tempfile.TemporaryDirectory(prefix="commbench-logs-") as log_dir:
        config = LaunchConfig(
            min_nodes=1,
            max_nodes=1,
            nproc_per_node=nproc,
            run_id=f"commbench-{uuid.uuid4().hex[:8]}",
            rdzv_backend="c10d",
            rdzv_endpoint="localhost:0",
            max_restarts=0,
            monitor_interval=0.1,
            logs_specs=DefaultLogsSpecs(log_dir=log_dir, redirects=Std.ERR),
        )
        logging.disable(logging.ERROR)
        os.environ[LAUNCHER_PID] = str(os.getpid())  # for the workers alone
        try:
            elastic_launch(config, sys.executable)(*python_args)
        except ChildFailedError as err:
            speakers = relay_worker_stderr(Path(log_dir), sys.stderr)
            rank, first = err.get_first_failure()  # one node: the global rank is the local one
            # a failed check (1) is the run's outcome, said in rank 0's summary, not a crash
            if rank not in speakers and first.exitcode != ExitCode.FAILED:
                how = first.signal_name() if first.exitcode < 0 else f"exit code {first.exitcode}"
                print(f"commbench: error: rank {rank} ended with {how}", file=sys.stderr)
            failures = sorted(err.failures.items())  # by global rank
            # a rank killed by a signal (the OOM killer's SIGKILL) is a peer that died: the
            # run is incomplete (3), not a failed check (1)
            return next((f.exitcode for _, f in failures if f.exitcode > 0), ExitCode.INCOMPLETE)
        except SignalException:  # Ctrl-C: the workers got it too, stopped cleanly and said so
            # (their own lines: one still starting Python dies of it with a traceback)
            relay_worker_stderr(Path(log_dir), sys.stderr, prefix="commbench: ")
            return ExitCode.INTERRUPTED
        finally:
            logging.disable(logging.NOTSET)
            del os.environ[LAUNCHER_PID]
        relay_worker_stderr(Path(log_dir), sys.stderr)
    return 0
