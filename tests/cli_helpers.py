"""Run the real CLI in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the tree whose commbench the tests run

TINY_SWEEP = """
tokens = [1, 8]
hidden = [32]
dtypes = ["bfloat16", "float32"]
[timing]
warmup = 1
min_sample_ms = 1.0
max_iters = 20
min_samples = 3
max_samples = 4
target_ci = 0.5
max_seconds = 0.2
"""


def tiny_config(directory: Path) -> Path:
    path = directory / "tiny.toml"
    path.write_text(TINY_SWEEP)
    return path


def commbench(
    *args: str, timeout: float = 240, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m commbench ARGS` in `cwd` with `env` added to this environment, never
    inheriting a launcher's variables; this tree's commbench whatever the directory."""
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    }
    python_path = os.pathsep.join(filter(None, [str(ROOT), inherited.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "commbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**inherited, "PYTHONPATH": python_path, **(env or {})},
    )


def torchrun(
    nproc: int, *args: str, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`torchrun --standalone` of `python -m commbench ARGS`, `env` added to this one's."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            "-m",
            "commbench",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def srun_like(
    nproc: int, args: list[str], logs: Path, prefix: dict[int, list[str]] | None = None
) -> list[subprocess.Popen]:
    """Start `nproc` ranks the way `srun` does: no agent, SLURM_* variables and a
    MASTER_ADDR/PORT, each rank's output in logs/rank<N>.out|err. `prefix[rank]` goes
    before that rank's command (e.g. prlimit)."""
    from distworld import free_port

    port = free_port()
    base = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    procs = []
    for rank in range(nproc):
        env = {
            **base,
            "SLURM_PROCID": str(rank),
            "SLURM_NTASKS": str(nproc),
            "SLURM_LOCALID": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        command = [*(prefix or {}).get(rank, []), sys.executable, "-m", "commbench", *args]
        with (
            (logs / f"rank{rank}.out").open("w") as out,
            (logs / f"rank{rank}.err").open("w") as err,
        ):
            procs.append(subprocess.Popen(command, env=env, stdout=out, stderr=err))
    return procs
