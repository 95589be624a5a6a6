"""The run directory's lock: a live holder refuses, a dead one on this host is taken over,
one on another host cannot be judged from here and the refusal says how to clear it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from commbench.errors import UsageError
from commbench.rundir.lock import LOCK, check_unlocked, holder, release, take


def lock(run: Path, pid: int, host: str) -> None:
    run.mkdir(exist_ok=True)
    (run / LOCK).write_text(json.dumps({"pid": pid, "host": host, "since": "2026-12-01"}))


def test_a_live_holder_refuses_and_a_dead_one_is_taken_over(tmp_path: Path) -> None:
    lock(tmp_path, os.getppid(), socket.gethostname())  # alive: the test's parent
    with pytest.raises(UsageError, match=f"being written by another sweep \\(pid {os.getppid()}"):
        take(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lock(tmp_path, int(gone.stdout), socket.gethostname())
    take(tmp_path)
    assert holder(tmp_path).pid == os.getpid()
    release(tmp_path)
    assert not (tmp_path / LOCK).exists()


def test_a_holder_on_another_host_is_named_with_how_to_clear_it(tmp_path: Path) -> None:
    lock(tmp_path, 1, "node-b")
    with pytest.raises(UsageError) as refused:
        check_unlocked(tmp_path)
    assert "(pid 1 on node-b, since 2026-12-01)" in str(refused.value)
    assert str(refused.value).endswith(f"if no sweep runs there, remove {tmp_path / LOCK}")
    release(tmp_path)  # not ours: left alone
    assert (tmp_path / LOCK).exists()
