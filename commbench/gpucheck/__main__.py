"""`python -m commbench.gpucheck`: first the modules it needs, before importing any of them."""

from __future__ import annotations

import sys

from commbench.gpucheck.preflight import carry_line, missing_modules
from commbench.gpucheck.verdict import EXIT_CANNOT_RUN, NO_TORCH
from commbench.preflight import broken_line


def main(argv: list[str] | None = None) -> int:
    missing = missing_modules()
    if "torch" in missing:
        print(NO_TORCH, file=sys.stderr)
        return EXIT_CANNOT_RUN
    if missing:
        print(carry_line(missing), file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        from commbench.gpucheck.run import main as run
    except ImportError as err:
        print(broken_line(err, "gpu-check"), file=sys.stderr)
        return EXIT_CANNOT_RUN
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
