"""Standard output that a reader closing it early only silences.

`commbench gate ... | head` closes the pipe after a few lines. Python then raises
BrokenPipeError at the next write: the command would die there, before the files it
still had to write, with another exit code than its verdict's, which a CI script with
`pipefail` misreads. Wrapped, a closed standard output loses only text: the command runs
on, writes every file and exits with its own code. Standard library only: `python -m
commbench` installs it before anything else.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO


class QuietWhenClosed:
    """`stream`, whose writes and flushes after its reader has gone do nothing."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()

    def _silence(self) -> None:
        """Point the descriptor at /dev/null: what is still buffered, and Python's own
        flush at exit (which would end the process with 120), then go nowhere."""
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())
        finally:
            os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def quiet_when_closed() -> None:
    """Wrap sys.stdout (once)."""
    if not isinstance(sys.stdout, QuietWhenClosed) and sys.stdout is not None:
        sys.stdout = QuietWhenClosed(sys.stdout)  # type: ignore[assignment]
