"""Run the real CLI: in a subprocess, as a user would, or in this process through the
same entry point where only the command's own work is under test (argument validation:
an interpreter start each would cost more than the rest of the suite's unit tests)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from support.paths import REPO

ROOT = REPO  # the tree whose commbench the tests run

TINY_SWEEP = """
tokens = [1, 8]
hidden = [32]
dtypes = ["bfloat16", "float32"]
[timing]
warmup = 1
min_sample_ms = 1000.0
max_iters = 3
min_samples = 3
max_samples = 4
target_ci = 0.5
max_seconds = 0.2
"""
# No tiny operation lasts a third of a second: K is max_iters on any machine, so a row's
# `iters` is known (a calibration that always chose K = 1 would show).
TINY_ITERS = 3
# What the shared runs add: rounds of up to 8 samples, so the stop rule can stop on the
# confidence interval (6 samples at least) and every row has one.
SHARED_FLAGS = ["--rounds", "2", "--max-samples", "8"]

# Every secret, and the name that is not allowlisted, carries the marker "s3cr3t".
ALLOWLISTED_SECRETS = {
    "NCCL_FAKE_TOKEN": "abc-s3cr3t",  # a secret name
    "NCCL_PROXY_URL": "https://alice:s3cr3t@proxy.example:3128",  # credentials in a URL
    "CUDA_FAKE_SETTING": "hf_AbCdEfGhIjKlMnOps3cr3tQrStUvWx",  # a token
}
UNLISTED = {"MY_PASSWORD_S3CR3T": "plain"}


# The MoE all_to_all sweep of the issue that added it (with the tiny timing budget).
HIDDEN_MOE = 256
EXPERTS, TOPK, SKEWS = 8, 2, (0.0, 1.2)
MOE_SWEEP = [
    "--collectives", "all_to_all", "--variants", "list,tensor,padded", "--tokens", "8,128",
    "--hidden", str(HIDDEN_MOE), "--tp", "2,4", "--dtypes", "bfloat16",
    "--experts", str(EXPERTS), "--topk", str(TOPK), "--skew", ",".join(map(str, SKEWS)),
]  # fmt: skip


@dataclass(frozen=True)
class SharedRun:
    """A real sweep that several tests read, each for a different thing: they must not
    change it (write next to it, in their own tmp_path)."""

    path: Path  # the run directory
    done: subprocess.CompletedProcess  # the sweep's CompletedProcess
    root: Path  # the only tree the sweep may write to: cwd, HOME, TMPDIR, config, run
    written: frozenset[Path]  # the files the sweep added under root


def tiny_config(directory: Path) -> Path:
    path = directory / "tiny.toml"
    path.write_text(TINY_SWEEP)
    return path


def files_under(root: Path) -> set[Path]:
    """Every file under root. Directories are left out: torch's elastic launcher leaves its
    (empty) log directories in TMPDIR, which is not the run's output."""
    return {path for path in root.rglob("*") if not path.is_dir()}


def commbench(
    *args: str, timeout: float = 240, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m commbench ARGS` in `cwd` with `env` added to this environment, never
    inheriting a launcher's variables; this tree's commbench whatever the directory."""
    return subprocess.run(
        [sys.executable, "-m", "commbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=_environment(env),
    )


def _environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """This environment less a launcher's variables, this tree first on the path, `env`."""
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    }
    python_path = os.pathsep.join(filter(None, [str(ROOT), inherited.get("PYTHONPATH")]))
    return {**inherited, "PYTHONPATH": python_path, **(env or {})}


def commbench_unread(
    *args: str, timeout: float = 240, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m commbench ARGS` whose standard output is a pipe its reader closed before
    the first line (as `| head` does once it has read enough): stdout is then ''."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "commbench", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=cwd, env=_environment(),
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone
    _, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)


def commbench_here(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`commbench ARGS` run in this process (in `cwd`) by the console script's entry point
    (`commbench.__main__.main`): the same parsing, the same one-line errors and exit codes,
    its output captured. For what needs no launch; a command that would start workers runs
    them as the subprocess would."""
    from commbench.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["commbench", *args]
    here, environment = Path.cwd(), dict(os.environ)
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    finally:
        sys.argv = argv
        os.chdir(here)
    # what commbench tells its workers stays theirs: a later world would inherit it
    leaked = {k: v for k, v in os.environ.items() if k.startswith("COMMBENCH_")}
    assert leaked == {k: v for k, v in environment.items() if k.startswith("COMMBENCH_")}
    return subprocess.CompletedProcess(["commbench", *args], code, out.getvalue(), err.getvalue())


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


def two_nodes(args: list[str], logs: Path) -> list[subprocess.CompletedProcess]:
    """Two torchrun agents on loopback, `--nnodes 2 --nproc-per-node 2`, joined through a
    c10d rendezvous into one world of 4: each node's exit code, and its output and errors
    (logs/node<N>.log) as stdout."""
    from support.distworld import free_port

    port = free_port()
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=2",
        "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
        "--rdzv-id=commbench-two-nodes", "-m", "commbench", *args,
    ]  # fmt: skip
    paths = [logs / f"node{n}.log" for n in range(2)]
    nodes = []
    for path in paths:
        with path.open("w") as log:
            nodes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    try:
        for node in nodes:
            node.wait(timeout=300)
    finally:
        for node in nodes:
            node.kill()
    return [
        subprocess.CompletedProcess(command, node.returncode, path.read_text(), "")
        for node, path in zip(nodes, paths, strict=True)
    ]


def srun_like(
    nproc: int,
    args: list[str],
    logs: Path,
    prefix: dict[int, list[str]] | None = None,
    env: dict[str, str] | None = None,
) -> list[subprocess.Popen]:
    """Start `nproc` ranks the way `srun` does: no agent, SLURM_* variables and a
    MASTER_ADDR/PORT, each rank's output in logs/rank<N>.out|err. `prefix[rank]` goes
    before that rank's command (e.g. prlimit); `env` is added to every rank's."""
    from support.distworld import free_port

    port = free_port()
    base = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    base.update(env or {})
    procs = []
    for rank in range(nproc):
        mine = {
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
            procs.append(subprocess.Popen(command, env=mine, stdout=out, stderr=err))
    return procs
