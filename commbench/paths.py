"""Every path a command writes, checked before the command does any work, by one rule:

- a file (`--json`, `--markdown`, `--junit`, `--csv`, `export --out`, the job's
  GITHUB_STEP_SUMMARY) is written only into a folder that exists: a missing folder is a
  typo to report, not a folder to make;
- a directory (`sweep --out`, `plot --out`) is created, its missing parents with it
  (`--out baselines/h100/run-3` is how a history is kept).

Permission bits do not tell whether a path can be written (root passes os.access on /proc
and on read-only mounts): trying does, and the probe leaves nothing behind. A path that
cannot be written is one line naming the flag and the path (UsageError, exit 2), said
before a run is read or a worker started, never a traceback after the work.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from commbench.errors import UsageError

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def check_file(name: str, path: Path) -> None:
    """Refuse a file output `name` (the flag, or the variable) that cannot be written."""

    def refuse(why: str) -> UsageError:
        return UsageError(f"{name}: {str(path)!r} cannot be written: {why}")

    if path.is_dir():
        raise refuse("it is a directory")
    folder = path.parent
    if not folder.exists():
        raise refuse(f"folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise refuse(f"{str(folder)!r} is not a folder")
    try:
        if path.exists():  # appending nothing changes nothing, and tells
            path.open("ab").close()
        else:
            with tempfile.TemporaryFile(dir=folder):
                pass
    except OSError as err:
        raise refuse(err.strerror or type(err).__name__) from None


def check_directory(name: str, path: Path) -> None:
    """Refuse a directory output `name` that cannot be created (or written into): the
    directory and its missing parents are made, a file made in it, and all of it removed."""

    def refuse(why: str) -> UsageError:
        return UsageError(f"{name}: {str(path)!r} cannot be created{why}")

    if path.exists() and not path.is_dir():
        raise refuse(": it exists and is not a directory")
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        raise refuse(f": {str(existing)!r} is a file")
    made = []
    try:
        for directory in (*reversed(path.parents), path):
            if not directory.exists():
                directory.mkdir()
                made.append(directory)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        where = f" in {err.filename!r}" if err.filename and err.filename != str(path) else ""
        raise refuse(f"{where}: {err.strerror}") from None
    finally:
        for directory in reversed(made):
            directory.rmdir()


def check_files(outputs: dict[str, Path | None]) -> None:
    """`check_file` for each output asked for (name -> path; None where not asked)."""
    for name, path in outputs.items():
        if path is not None:
            check_file(name, path)


def step_summary() -> dict[str, Path | None]:
    """GitHub's job summary file, which the gate appends to when the job has one."""
    summary = os.environ.get(STEP_SUMMARY)
    return {STEP_SUMMARY: Path(summary) if summary else None}
