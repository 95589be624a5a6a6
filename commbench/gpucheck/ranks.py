"""Starting ranks on this machine's GPUs the way srun does (no agent), each rank's output in
its own log files under the work directory, which gpu-check keeps as evidence."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from commbench.sweep.backend import SHARED_GPU_VAR


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


def shared_env(env: dict[str, str]) -> dict[str, str]:
    """A rank's environment when every rank shares the first visible GPU: the sweep's
    world then makes each rank its own NCCL host (commbench.sweep.backend.shared_gpu_env)."""
    first = env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    return {**env, SHARED_GPU_VAR: "1", "CUDA_VISIBLE_DEVICES": first}


@dataclass
class Ranks:
    """Ranks started together; rank r's output is in logs/rank{r}.out and .err."""

    procs: list[subprocess.Popen]
    logs: Path

    def wait(self, timeout: float) -> list[int | None]:
        """Every rank's exit code (None: still running at `timeout`, then killed)."""
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return codes

    def log(self, rank: int, stream: str = "err") -> Path:
        return self.logs / f"rank{rank}.{stream}"

    def stderr(self, rank: int) -> str:
        return self.log(rank).read_text(errors="replace")

    def why(self, codes: list[int | None]) -> str:
        """The exit codes, rank 0's last line and where its whole log is."""
        last = self.stderr(0).strip().splitlines()[-1:] or ["(nothing)"]
        return (
            f"exit codes {codes} (None: killed at the time limit); rank 0 said {last[0]!r};"
            f" log {self.log(0)}"
        )


class Runner:
    """Starts ranks in `work`, each command's config, run directory and logs numbered."""

    def __init__(self, work: Path, repo: Path) -> None:
        self.work = work
        path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
        self.count = 0

    def next(self, name: str) -> Path:
        """A new path in the work directory: NAME-<n>."""
        self.count += 1
        return self.work / f"{name}-{self.count}"

    def config(self, text: str) -> Path:
        path = self.next("config").with_suffix(".toml")
        path.write_text(text)
        return path

    def start(
        self, ranks: int, args: list[str], shared: bool = False, env: dict | None = None
    ) -> Ranks:
        """`ranks` ranks of `python ARGS`; `shared`: all on one GPU (shared_env)."""
        logs = self.next("logs")
        logs.mkdir()
        port = free_port()
        procs = []
        for rank in range(ranks):
            mine = rank_env({**self.env, **(env or {})}, rank, ranks, port)
            if shared:
                mine = shared_env(mine)
            with (
                (logs / f"rank{rank}.out").open("w") as out,
                (logs / f"rank{rank}.err").open("w") as err,
            ):
                procs.append(
                    subprocess.Popen([sys.executable, *args], env=mine, stdout=out, stderr=err)
                )
        return Ranks(procs, logs)

    def sweep(
        self, ranks: int, config: str, extra: list[str], shared: bool = False
    ) -> tuple[Ranks, Path]:
        """`ranks` ranks of `commbench sweep` on `config` (its text), into a new run dir."""
        out = self.next("run")
        args = ["-m", "commbench", "sweep", "--config", str(self.config(config)), "--out", str(out)]
        return self.start(ranks, [*args, *extra], shared), out
