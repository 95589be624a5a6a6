"""Processes a launch leaves behind, ended before the experiment goes on.

A launch's ranks run in sessions of their own (PyTorch's elastic launcher starts each
so), out of reach of a signal to the launch's process group. A launcher killed at the
end of its grace, or a Ctrl-C that lands while it is still starting its ranks, leaves
ranks behind whose parent is gone: they would hold the port, the CPUs or the GPU through
the next launch, or outlive the experiment. The experiment registers as their subreaper
(Linux): the kernel then makes such orphans its children, and it ends them once the
launch is over. Elsewhere nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.1
KILL_WAIT_S = 30.0  # after SIGKILL: a process stuck in the kernel (a GPU driver's teardown)


def adopt_orphans() -> None:
    """Make this process the subreaper of its descendants, where the system allows it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children() -> set[int]:
    """The pids whose parent is this process (zombies included), from /proc."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == me:
                found.add(int(entry.name))
    return found


def end_orphans(known: set[int], grace_s: float) -> None:
    """End every child of this process not in `known` (those it started itself):
    SIGTERM (a rank stops as on Ctrl-C), SIGKILL to any left after `grace_s`, each one
    reaped, their own orphans too; one that outlives SIGKILL by `KILL_WAIT_S` is left
    as it is."""
    ended: set[int] = set()
    deadline = time.monotonic() + grace_s
    while (left := children() - known) and time.monotonic() < deadline + KILL_WAIT_S:
        sig = signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL
        for pid in left:
            if pid not in ended or sig == signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        ended |= left
        time.sleep(POLL_S)
