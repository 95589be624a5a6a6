"""The one exception the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class UsageError(Exception):
    """Bad input: the message names the field and the value; no traceback is shown."""


def describe_invalid(err: ValidationError, source: str) -> str:
    """pydantic's first complaint as one line: `source: field: why (got value)`."""
    first = err.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {field!r}"
    return f"{source}: {field}: {message} (got {first['input']!r})"
