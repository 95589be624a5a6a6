"""Starting commbench sweeps' ranks on this machine's GPUs, the way srun does (no agent)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

TIMING = """[timing]
warmup = {warmup}
min_sample_ms = {min_sample_ms}
max_iters = {max_iters}
min_samples = {samples}
max_samples = {samples}
target_ci = 0.5
max_seconds = 30
"""
SHARED_GPU = {  # every rank on GPU 0, each its own NCCL host (socket transport)
    "COMMBENCH_SHARE_GPU": "1",
    "NCCL_P2P_DISABLE": "1",
    "NCCL_SHM_DISABLE": "1",
    "NCCL_IB_DISABLE": "1",
    "NCCL_NET": "Socket",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_env(base: dict[str, str], rank: int, ranks: int, port: int) -> dict[str, str]:
    """One rank's environment, as torchrun or srun would set it."""
    return {
        **base,
        "RANK": str(rank),
        "WORLD_SIZE": str(ranks),
        "LOCAL_RANK": str(rank),
        "LOCAL_WORLD_SIZE": str(ranks),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


@dataclass
class Ranks:
    """Ranks started the way srun does (no agent): each its own environment."""

    procs: list[subprocess.Popen]
    logs: Path

    def wait(self, timeout: float) -> list[int | None]:
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return codes

    def stderr(self, rank: int) -> str:
        return (self.logs / f"rank{rank}.err").read_text(errors="replace")

    def why(self, codes: list[int | None]) -> str:
        """The exit codes and rank 0's last line: why a run did not do what was wanted."""
        last = self.stderr(0).strip().splitlines()[-1:] or [""]
        return f"exit codes {codes}: {last[0][:120]}"


class Runner:
    """Starts commbench sweeps in `work` on this machine's GPUs."""

    def __init__(self, work: Path, repo: Path) -> None:
        self.work = work
        path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "PYTHONPATH": path}
        self.count = 0

    def config(self, body: str, timing: dict) -> Path:
        self.count += 1
        path = self.work / f"config-{self.count}.toml"
        path.write_text(body + "\n" + TIMING.format(**timing))
        return path

    def start(self, ranks: int, args: list[str], shared: bool = False) -> tuple[Ranks, Path]:
        """`ranks` ranks of `commbench sweep ARGS`; `shared`: all on GPU 0, each rank its
        own NCCL_HOSTID so NCCL treats them as separate hosts (socket transport)."""
        self.count += 1
        out = self.work / f"run-{self.count}"
        logs = self.work / f"logs-{self.count}"
        logs.mkdir()
        port = free_port()
        procs = []
        for rank in range(ranks):
            env = rank_env(self.env, rank, ranks, port)
            if shared:
                env.update(
                    SHARED_GPU,
                    CUDA_VISIBLE_DEVICES=env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0],
                    NCCL_HOSTID=f"commbench-gpucheck-{rank}",
                )
            command = [sys.executable, "-m", "commbench", "sweep", "--out", str(out), *args]
            with (
                (logs / f"rank{rank}.out").open("w") as o,
                (logs / f"rank{rank}.err").open("w") as e,
            ):
                procs.append(subprocess.Popen(command, env=env, stdout=o, stderr=e))
        return Ranks(procs, logs), out

    def sweep(
        self, ranks: int, args: list[str], timeout: float, shared: bool = False
    ) -> tuple[list[int | None], Path, Ranks]:
        started, out = self.start(ranks, args, shared)
        return started.wait(timeout), out, started

    def script(self, ranks: int, script: Path, args: list[str]) -> Ranks:
        """`ranks` ranks of a plain python script (its output not captured)."""
        port = free_port()
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), *args], env=rank_env(self.env, rank, ranks, port)
            )
            for rank in range(ranks)
        ]
        return Ranks(procs, self.work)


def results(out: Path) -> pd.DataFrame:
    """A finished run's results.csv, notes as text."""
    return pd.read_csv(out / "results.csv", dtype={"note": str}).fillna({"note": ""})
