"""The one exception the CLI turns into a one-line message and exit code 2."""


class UsageError(Exception):
    """Bad input: the message names the field and the value; no traceback is shown."""
