"""One launch of an A/B experiment, and where each launch goes in the order.

A launch is `PYTHON -m commbench sweep ... --out DIR` as its own process (a fresh world:
a libnccl or an interpreter cannot change inside one), locally through `sweep --nproc`,
or through the user's launcher template (`srun ... {command}`), with the arm's
environment and `--nccl-lib`. Its directory is an ordinary run directory.
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import commbench
from commbench.ab.arms import MAY_CHANGE, Arm
from commbench.ab.design import PLACEHOLDER
from commbench.ab.orphans import adopt_orphans, children, end_orphans
from commbench.errors import ExitCode
from commbench.rundir.identity import identity_diff
from commbench.rundir.meta import RunMeta

# After SIGINT, before the launch's processes are killed: more than the 30 s that PyTorch's
# elastic launcher gives its ranks before it kills them, so that it ends first.
STOP_GRACE_S = 60.0
ORPHAN_GRACE_S = 10.0  # for ranks left behind by their launcher, already told to stop


def block_order(arms: list[str], seed: int, block: int) -> list[str]:
    """Block 2m is a permutation of the arms drawn from (seed, m), block 2m + 1 the same
    reversed (ABBA for two arms): each arm's mean position is the same, so drift that
    is linear over a pair of blocks cancels."""
    order = list(arms)
    random.Random(f"{seed}:{block // 2}").shuffle(order)
    return order if block % 2 == 0 else order[::-1]


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "failed", "timeout", "interrupted", "refused" (the launch said exit 2)
    reason: str
    seconds: float


def command(
    arm: Arm, sweep_args: list[str], out: Path, nproc: int | None, launcher: str | None
) -> list[str] | str:
    """The launch's argv (or shell line under a launcher template)."""
    argv = [arm.python or sys.executable, "-m", "commbench", "sweep", *sweep_args]
    argv += ["--out", str(out)]
    if arm.nccl_lib is not None:
        argv += ["--nccl-lib", arm.nccl_lib]
    if launcher is not None:
        return launcher.replace(PLACEHOLDER, shlex.join(argv))
    return [*argv, "--nproc", str(nproc)] if nproc is not None else argv


def run_launch(
    arm: Arm,
    sweep_args: list[str],
    out: Path,
    log: Path,
    *,
    nproc: int | None,
    launcher: str | None,
    timeout_s: float,
) -> Outcome:
    """Run one launch to its end, its output in `log`. A launch past `timeout_s` is
    stopped (a hang); Ctrl-C stops it cleanly and is raised again once it has. No process
    of it is left when this returns (see `orphans`)."""
    line = command(arm, sweep_args, out.resolve(), nproc, launcher)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    if arm.python is None:  # this interpreter runs this commbench, wherever it came from
        here = str(Path(commbench.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    env.update(arm.env)
    adopt_orphans()
    known = children()
    try:
        return _run(line, env, out, log, timeout_s)
    finally:
        end_orphans(known, ORPHAN_GRACE_S)


def _run(
    line: list[str] | str,
    env: dict[str, str],
    out: Path,
    log: Path,
    timeout_s: float,
) -> Outcome:
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            line,
            shell=isinstance(line, str),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            # the experiment's directory, not the caller's: an arm's own interpreter
            # imports its own commbench, not one in the folder `ab` was started from
            cwd=out.resolve().parent.parent,
            start_new_session=True,  # its own group: stopped as a whole, not by our terminal
        )
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(proc)
            return Outcome("timeout", f"no end within {timeout_s:g} s", _since(started))
        except KeyboardInterrupt:
            _stop(proc)
            raise
    seconds = _since(started)
    if code == 0:
        return Outcome("ok", "", seconds)
    said = _last_line(log) or f"exit code {code}"
    if code == ExitCode.USAGE:
        return Outcome("refused", said, seconds)
    if code == ExitCode.INTERRUPTED:
        return Outcome("interrupted", said, seconds)
    return Outcome("failed", f"exit code {code}: {said}", seconds)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to the launch's group (the sweep stops at a point boundary), then SIGKILL."""
    for sig, wait in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def foreign_difference(reference: RunMeta, launch: RunMeta, own: dict) -> str | None:
    """Where `launch` differs from the reference launch in anything but its arm's own
    changes (`own`: key -> (reference's value, arm's)); None when it does not."""
    allowed = set().union(*(MAY_CHANGE.get(key, set()) for key in own))
    for name, (mine, theirs) in identity_diff(reference, launch).items():
        if name == "nccl_env":
            mine = {k: v for k, v in mine.items() if k not in own}
            theirs = {k: v for k, v in theirs.items() if k not in own}
            if mine == theirs:
                continue
        elif name in allowed:
            continue
        return f"{name}: {mine!r} in the reference launch, {theirs!r} here"
    paths = (reference.versions.nccl_path, launch.versions.nccl_path)
    if paths[0] != paths[1] and not {"nccl-lib", "python"} & set(own):  # the library bound
        return f"nccl_path: {paths[0]!r} in the reference launch, {paths[1]!r} here"
    return None
