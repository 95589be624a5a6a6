"""The one exception the CLI turns into a one-line message and exit code 2, and every
exit code commbench gives."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class ExitCode(IntEnum):
    """What a command's exit status means (docs/usage.md, "When a run goes wrong", and
    docs/ci.md): the contract CI scripts read. A sweep, the gate and an A/B experiment
    share the numbers."""

    OK = 0  # sweep: every point measured (or skipped, said in its row); gate: pass
    FAILED = 1  # sweep: a point failed its exact-output check
    REGRESSION = 1  # gate: a row or an aggregate regressed
    USAGE = 2  # bad input: one line naming the field and the value; a missing module
    INCOMPLETE = 3  # sweep: a peer died or hung; what finished is kept, --resume the rest
    NOT_COMPARABLE = 3  # gate, ab: the runs differ in what is measured, or rows are missing
    INSUFFICIENT = 4  # gate: it cannot see the shift asked for (more baseline runs would)
    UNDECIDED = 4  # ab: the budget ended before every interval decided
    INTERNAL = 70  # an unexpected error: a bug in commbench (its traceback is printed), never 1
    INTERRUPTED = 130  # SIGINT/SIGTERM: stopped at a point boundary, resumable


class UsageError(Exception):
    """Bad input: the message names the field and the value; no traceback is shown."""


def describe_invalid(err: ValidationError, source: str, flag: str | None = None) -> str:
    """pydantic's first complaint as one line: `source: field: why (got value)`, or
    `--flag: why (got value)` where the value came from that flag."""
    first = err.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {field!r}"
    return f"{flag or f'{source}: {field}'}: {message} (got {first['input']!r})"
