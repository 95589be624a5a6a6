"""Before the command line is imported: are the modules every command needs there?

Standard library only, and without importing them (importing pandas alone costs a command
a few tenths of a second): a CUDA torch image often has torch, numpy and pandas but not
pydantic, and a missing one is said in one line, exit 2, rather than as an ImportError's
traceback from deep inside, whose exit code 1 a CI reads as a failed check.
`python -m commbench`, the `commbench` script and gpu-check all start here.
"""

from __future__ import annotations

import importlib.util
import sys

# Every module the command line and a sweep import that the standard library lacks (torch
# is a sweep's own concern: the commands that only read results never import it). scipy is
# not one: only the statistics of `gate`, `compare` and `ab` import it, where they run.
NEEDED = ("typer", "rich", "pydantic", "pandas", "numpy")


def missing_modules(names: tuple[str, ...] = NEEDED) -> list[str]:
    """The modules in `names` that Python cannot find."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # a finder that refuses it
            found = False
        if not found:
            missing.append(name)
    return missing


def missing_line(missing: list[str]) -> str:
    """One line naming what is missing and how to install it."""
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return (
        f"commbench: error: missing Python module(s) {', '.join(missing)} (Python {python},"
        f" {sys.executable}): `{sys.executable} -m pip install {' '.join(missing)}`; without"
        " network, docs/gpu.md says how to carry wheels"
    )


def broken_line(err: ImportError, prog: str = "commbench: error") -> str:
    """One line for a module that is there but does not import (a pydantic without its
    compiled core, a wheel for another Python)."""
    return (
        f"{prog}: a Python module is installed but does not import: {err}"
        f" (Python {sys.version_info[0]}.{sys.version_info[1]}, {sys.executable})"
    )
