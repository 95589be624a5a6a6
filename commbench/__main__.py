"""`python -m commbench`, `torchrun -m commbench` and the `commbench` script: first a
standard output that a closed pipe only silences, and the modules every command needs (one
line and exit 2 where one is missing or broken), then the command line."""

from __future__ import annotations

import sys

from commbench.errors import ExitCode
from commbench.preflight import broken_line, missing_line, missing_modules
from commbench.stdout import quiet_when_closed


def main() -> None:
    quiet_when_closed()
    missing = missing_modules()
    if missing:
        print(missing_line(missing), file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    try:
        from commbench.cli import main as command_line
    except ImportError as err:
        print(broken_line(err), file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    command_line()


if __name__ == "__main__":
    main()
