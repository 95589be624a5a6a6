"""Who writes a run directory: one sweep at a time.

Rank 0 of a sweep holds LOCK in its run directory (its pid, host and start) while it
writes, and lets it go when the run ends. A second sweep into the directory (`--force`,
`--resume`) is refused while the holder lives, in one line naming it, instead of wiping
files under a sweep still writing them. A lock whose process is gone on this host is
stale and taken over; one from another host cannot be checked from here, and the line
says how to remove it.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from commbench.errors import UsageError

LOCK = ".commbench.lock"


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    since: str

    def alive(self) -> bool:
        """Whether the holder may still run: surely not only for a pid gone on this host."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process
            return True
        return True


def holder(run_dir: Path) -> Holder | None:
    """The lock's holder, or None where there is no readable lock."""
    try:
        data = json.loads((run_dir / LOCK).read_text())
        return Holder(int(data["pid"]), str(data["host"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_unlocked(run_dir: Path, flag: str = "out") -> None:
    """Refuse a directory a live sweep writes."""
    held = holder(run_dir)
    if held is None or not held.alive():
        return
    elsewhere = held.host != socket.gethostname()
    stale = f"; if no sweep runs there, remove {run_dir / LOCK}" if elsewhere else ""
    raise UsageError(
        f"{flag}: {str(run_dir)!r} is being written by another sweep (pid {held.pid} on"
        f" {held.host}, since {held.since}): wait for it to end, or give another --out{stale}"
    )


def take(run_dir: Path, flag: str = "out") -> None:
    """Hold the directory's lock (taking over a stale one), or refuse as check_unlocked."""
    mine = json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}, sort_keys=True
    )
    path = run_dir / LOCK
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        check_unlocked(run_dir, flag)  # refuses a live holder
        staged = path.with_name(f"{LOCK}.{os.getpid()}")
        staged.write_text(mine)
        os.replace(staged, path)  # a stale lock: taken over
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(mine)


def release(run_dir: Path) -> None:
    """Let the lock go, where this process holds it."""
    held = holder(run_dir)
    if held is not None and held.pid == os.getpid() and held.host == socket.gethostname():
        (run_dir / LOCK).unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
