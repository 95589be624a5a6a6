"""How a sweep ends when something goes wrong outside it: a hung peer, a signal.

A collective whose peer died or hangs never returns by itself on some backends (NCCL
can spin forever), so a watchdog thread ends the process once no collective has
completed for the timeout. Signals only set a flag: the ranks agree to stop at the
next point boundary, so nobody is left in a collective and every finished point is on
disk before the run exits.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

from commbench.errors import ExitCode
from commbench.rundir.integrity import resume_command

# The process group's own timeout fires first with the backend's message; the
# watchdog is the backstop for a collective that ignores it.
WATCHDOG_GRACE = 1.2
# Except on NCCL, whose own watchdog ends the process (SIGABRT) at its groups' timeout:
# the measured NCCL groups wait this many --timeout, so commbench's watchdog acts first
# (groups.group_timeouts).
NCCL_GRACE = 2.0


def leave_at_once(code: int) -> NoReturn:
    """End this rank now with `code`, what it said flushed and no teardown run.

    After a fault a peer may be dead or stopped, and tearing the world down can wait for
    it: since torch 2.6 destroy_process_group destroys each NCCL communicator, and
    ncclCommDestroy synchronises with the communicator's other ranks on the node. What the
    run wrote is already on disk (each row is one unbuffered write); the operating system
    frees what the backend held.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class RunInterrupted(Exception):
    """A rank was asked to stop (Ctrl-C, SIGTERM); every rank agreed to stop here."""


class Watchdog:
    """Ends the process when no progress is reported for `timeout_s` * WATCHDOG_GRACE.

    `beat(where)` marks progress (a collective completed) and says what runs now;
    `on_expire(where, idle_s)` runs on the watchdog thread, then the process exits
    with ExitCode.INCOMPLETE: the main thread is stuck in the backend and cannot. Idle time
    is read from `clock` (tests pass one they advance themselves); the thread only
    decides how often it looks.
    """

    def __init__(
        self,
        timeout_s: float,
        on_expire: Callable[[str, float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = timeout_s * WATCHDOG_GRACE
        self._on_expire = on_expire
        self._clock = clock
        self._last = clock()
        self._where = "start-up"
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="commbench-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def beat(self, where: str | None = None) -> None:
        self._last = self._clock()
        if where is not None:
            self._where = where

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self._limit / 10)):
            idle = self._clock() - self._last
            if idle > self._limit:
                try:
                    self._on_expire(self._where, idle)
                finally:
                    leave_at_once(ExitCode.INCOMPLETE)


class StopRequest:
    """SIGINT and SIGTERM set `requested` instead of killing; restored on exit unless a
    stop was requested.

    torchrun forwards the terminal's Ctrl-C as a second signal, and a user or a batch
    system may send more: further signals change nothing, the ranks are already stopping.
    That holds until the process ends, not only until this block does: a signal that
    reached a stopping rank after its handlers were restored would raise
    KeyboardInterrupt in whatever runs then (an interpreter finalizer, a file being
    written) and print a traceback after the clean stop.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # only there can it
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.requested:
            return  # stopping: later signals stay harmless to the end (see above)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def is_communication_failure(err: RuntimeError) -> bool:
    """A peer died or hung: NCCL raises DistError, gloo a RuntimeError from its transport."""
    import torch.distributed as dist

    return isinstance(err, dist.DistError) or "gloo" in str(err)


def backend_message(err: BaseException) -> str:
    """The first line of a backend's error, without gloo's [source/file.cc:123] prefix."""
    return re.sub(r"^\[[^\]]*\]\s*", "", str(err).splitlines()[0])


def stopped_message(
    points: tuple[int, int], rounds: tuple[int, int], path: Path, nproc: int | None
) -> str:
    """What an early stop kept ((finished, planned) points and rounds) and the command
    that finishes the run: `--nproc N` where `sweep --nproc N` launched it (None: a
    launcher did, which must start the same world again)."""
    if nproc is None:
        finish = f"launch {resume_command(path)} as this run was launched, the same world"
    else:
        finish = f"run {resume_command(path, nproc)}"
    if not points[0] and not rounds[0]:
        return (
            f"commbench: stopped before the first point: nothing was measured, and {path}"
            f" holds no measurement: to measure it, {finish}, or remove {path}"
        )
    return (
        f"commbench: kept {points[0]} of {points[1]} finished points and {rounds[0]} of"
        f" {rounds[1]} measured rounds in {path}; to measure the rest, {finish}"
    )


def interrupted_early(path: Path, existed: bool) -> str:
    """The launcher's line when a signal ends `sweep --nproc` before any worker recorded
    the run (once one has, the workers say what they kept)."""
    left = "left as it was" if existed else "not created"
    return (
        f"commbench: interrupted before the first point: nothing was measured, and {path}"
        f" was {left}"
    )


def hung_message(rank: int, idle_s: float, where: str, timeout_s: float) -> str:
    """The watchdog's line: no collective completed for `idle_s` during `where`."""
    return (
        f"commbench: error: rank {rank}: no collective completed for {idle_s:.0f} s during"
        f" {where}: a peer rank is hung or dead (--timeout {timeout_s:g})"
    )
