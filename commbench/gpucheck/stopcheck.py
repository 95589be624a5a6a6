"""gpu-check's stopped-rank check: rank 1 SIGSTOPped mid-sweep; rank 0 must end the run
itself (exit 3, `stopped` in meta.json, the --resume hint), and the check says which path
ended it.

Three paths can free rank 0 (sweep/world.py, group_timeouts): gloo's control group times
out at --timeout (rank 0 waited in a control collective: meta.json's reason is "a
collective failed at ..."); commbench's watchdog at 1.2 x --timeout (rank 0 was stuck in
the measured collective: "no progress for ..."); NCCL's own watchdog at 2 x --timeout,
which aborts the process (SIGABRT: no `stopped`) or raises an NCCL error. The first two are
commbench's and pass; NCCL's means commbench's came too late, and fails.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from commbench.errors import ExitCode, UsageError
from commbench.gpucheck import sweeps
from commbench.gpucheck.ranks import Runner
from commbench.gpucheck.verdict import Check, judged
from commbench.rundir.reader import read_meta
from commbench.rundir.schema import ROUNDS_CSV

STOP_TIMEOUT = 10  # seconds: --timeout of the run whose rank is stopped
# After the stop, NCCL's watchdog would act at 2 x --timeout: room for it, and to exit.
AFTER_STOP_S = 3 * STOP_TIMEOUT
WATCHDOG, CONTROL, NCCL = "commbench's watchdog", "gloo's control timeout", "NCCL"
COMMBENCH_PATHS = (WATCHDOG, CONTROL)


def stop_path(code: int | None, reason: str | None) -> str:
    """Which path ended rank 0, from its exit code and meta.json's `stopped.reason`. A
    rank that recorded its stop and then never exited hung on its way out (destroying its
    NCCL groups, after commbench's watchdog had stopped): said so."""
    if code is None:
        if reason is None:
            return "none: rank 0 did not exit"
        return f"{stop_path(ExitCode.INCOMPLETE, reason)}, then rank 0 hung on its way out"
    if code in (-signal.SIGABRT, 128 + signal.SIGABRT):
        return f"{NCCL}'s watchdog (SIGABRT)"
    if reason is None:
        return f"none recorded (exit {code})"
    if reason.startswith("no progress for"):
        return WATCHDOG
    if "nccl" in reason.lower():
        return f"{NCCL} ({reason})"
    if reason.startswith("a collective failed"):
        return CONTROL
    return f"other ({reason})"


def stopped_reason(out: Path) -> str | None:
    """meta.json's `stopped.reason`, or None where the run recorded no stop."""
    try:
        stopped = read_meta(out).stopped
    except UsageError:
        return None
    return None if stopped is None else stopped.reason


def check_stopped_rank(run: Runner, shared: bool, limit: float, backend: str = "nccl") -> Check:
    deadline = time.monotonic() + limit
    args = ["--timeout", str(STOP_TIMEOUT)]
    started, out = run.sweep(2, sweeps.long_running(backend), args, shared)
    rounds = out / ROUNDS_CSV
    while time.monotonic() < deadline - AFTER_STOP_S and (
        not rounds.exists() or len(rounds.read_text().splitlines()) < 3
    ):
        if any(proc.poll() is not None for proc in started.procs):
            break
        time.sleep(0.5)
    started.procs[1].send_signal(signal.SIGSTOP)
    try:
        code = started.procs[0].wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        code = None
    started.procs[1].kill()
    started.wait(5)  # then kills what is left: rank 0, if it never exited
    reason = stopped_reason(out)
    path = stop_path(code, reason)
    hint = "--resume" in started.stderr(0)
    measured = f"ended by {path}; exit {code}, stopped={reason is not None}, hint={hint}"
    if code != ExitCode.INCOMPLETE or path not in COMMBENCH_PATHS or not hint:
        measured += f"; log {started.log(0)}"
    held = code == ExitCode.INCOMPLETE and reason is not None and hint and path in COMMBENCH_PATHS
    return judged("stopped rank", measured, held)
