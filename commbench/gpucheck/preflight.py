"""Before anything else: are the modules gpu-check and its sweeps import all there?

Standard library only, so that it runs on a bare CUDA torch: a GPU machine often has
torch, numpy and pandas but not pydantic, and an import error deep in a check would say
neither what is missing nor how to bring it. What is missing is said in one line, with
the commands that carry it (docs/gpu.md, "Carrying what is missing").
"""

from __future__ import annotations

import platform
import sys

from commbench import preflight

# What a sweep imports (torch, and what every command does); typer brings its own click.
NEEDED = ("torch", *preflight.NEEDED)
# The distributions that carry a module, its dependencies the image may lack included:
# pydantic's are its compiled core and three small pure-Python packages (about 2.8 MB in
# all for CPython 3.12 on x86_64). The others bring their own through pip's resolver.
CARRY = {
    "pydantic": (
        "pydantic",
        "pydantic-core",
        "annotated-types",
        "typing-inspection",
        "typing-extensions",
    ),
}


def missing_modules() -> list[str]:
    """The modules gpu-check needs that Python cannot find."""
    return preflight.missing_modules(NEEDED)


def distributions(missing: list[str]) -> list[str]:
    """The distributions to download for `missing` modules, each once, in order."""
    found: dict[str, None] = {}
    for name in missing:
        for dist in CARRY.get(name, (name,)):
            found[dist] = None
    return list(found)


def wheel_platform(machine: str | None = None) -> str:
    """pip's --platform for wheels that run on this machine's glibc Linux."""
    return f"manylinux2014_{machine or platform.machine()}"


def carry_line(missing: list[str], version: tuple[int, int] | None = None) -> str:
    """One line: what is missing, and the commands that carry it to this machine."""
    major, minor = version or sys.version_info[:2]
    dists = " ".join(distributions(missing))
    download = (
        f"pip download --only-binary=:all: --python-version {major}.{minor}"
        f" --platform {wheel_platform()} -d wheels/ {dists}"
    )
    return (
        f"gpu-check: missing module(s) {', '.join(missing)} for Python {major}.{minor}:"
        f" on a machine with network run `{download}`, copy wheels/ here, then"
        f" `python{major}.{minor} -m pip install --no-index --find-links wheels/ {dists}`"
        " (or unpack each wheel with `python -m zipfile -e WHEEL deps/` and set"
        " PYTHONPATH=deps); docs/gpu.md says more"
    )
