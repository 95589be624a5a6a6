"""The arms of an A/B experiment: a name and what it changes in the communication stack.

`--arm NAME[:KEY=VALUE[,KEY=VALUE...]]`, KEY one of `nccl-lib`, `python` or an
environment variable's NAME; or a TOML file of `[[arm]]` tables (`name`, `nccl-lib`,
`python`, `env = {NAME = "VALUE"}`). The first arm is the reference. Everything that
can be refused is refused here, before the first launch.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from commbench.errors import UsageError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
ITEM_SPLIT = re.compile(r",(?=[A-Za-z_][A-Za-z0-9_-]*=)")  # NCCL_ALGO=Ring,Tree stays one
# set by whoever starts the ranks, or by nccl-lib itself: an arm may not
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LD_PRELOAD")
# identity fields (commbench.rundir.identity) each kind of change may move; the library
# NCCL's calls resolve to (versions.nccl_path) may move with either
MAY_CHANGE = {
    "nccl-lib": {"nccl_runtime"},
    "python": {"torch", "cuda", "nccl_built", "nccl_runtime"},
}


@dataclass(frozen=True)
class Arm:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    nccl_lib: str | None = None
    python: str | None = None

    def settings(self) -> dict[str, str]:
        """What the arm sets, by key as the flag spells it."""
        found = {"nccl-lib": self.nccl_lib, "python": self.python}
        return {**{k: v for k, v in found.items() if v is not None}, **self.env}

    def changes(self, reference: Arm) -> dict[str, tuple[str | None, str | None]]:
        """key -> (reference's value, this arm's), where they differ."""
        mine, theirs = self.settings(), reference.settings()
        keys = sorted(set(mine) | set(theirs))
        return {k: (theirs.get(k), mine.get(k)) for k in keys if mine.get(k) != theirs.get(k)}

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "env": self.env,
            "nccl_lib": self.nccl_lib,
            "python": self.python,
        }


def from_record(record: dict[str, Any]) -> Arm:
    return Arm(record["name"], dict(record["env"]), record["nccl_lib"], record["python"])


def _arm(name: str, items: dict[str, str], where: str) -> Arm:
    if not NAME.fullmatch(name):
        raise UsageError(f"{where}: name must be letters, digits, '_', '.', '-' (got {name!r})")
    env, nccl_lib, python = {}, None, None
    for key, value in items.items():
        if key == "nccl-lib":
            nccl_lib = str(Path(value).expanduser().resolve())
        elif key == "python":
            python = value
        elif key in LAUNCHER_VARS:
            hint = "use nccl-lib=PATH" if key == "LD_PRELOAD" else "the launcher sets it"
            raise UsageError(f"{where}: {key} cannot be an arm's setting ({hint})")
        elif ENV_NAME.fullmatch(key):
            env[key] = value
        else:
            raise UsageError(
                f"{where}: unknown key {key!r} (nccl-lib, python, or an environment"
                " variable's NAME in capitals)"
            )
    return Arm(name, env, nccl_lib, python)


def parse_flag(text: str) -> Arm:
    """`NAME` or `NAME:KEY=VALUE[,KEY=VALUE...]`."""
    name, _, rest = text.partition(":")
    items: dict[str, str] = {}
    for item in ITEM_SPLIT.split(rest) if rest else []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"arm: expected NAME:KEY=VALUE[,KEY=VALUE...] (got {text!r})")
        if key in items:
            raise UsageError(f"arm {name}: {key} given twice (got {text!r})")
        items[key] = value
    return _arm(name, items, f"arm {name}")


def read_arms_file(path: Path) -> list[Arm]:
    """`[[arm]]` tables: name, and any of nccl-lib, python, env."""
    from commbench.config.settings import read_toml

    tables = read_toml(path, "arms").get("arm")
    if not isinstance(tables, list) or not tables:
        raise UsageError(f"arms: {path} has no [[arm]] tables")
    arms = []
    for number, table in enumerate(tables, 1):
        where = f"arms: {path}: arm {number}"
        unknown = sorted(set(table) - {"name", "nccl-lib", "python", "env"})
        if unknown:
            raise UsageError(f"{where}: unknown key {unknown[0]!r}")
        if not isinstance(table.get("name"), str):
            raise UsageError(f"{where}: needs a name (got {table.get('name')!r})")
        env = table.get("env", {})
        if not isinstance(env, dict):
            raise UsageError(f'{where}: env must be a table of NAME = "VALUE" (got {env!r})')
        items = {k: str(v) for k, v in table.items() if k in ("nccl-lib", "python")}
        items.update({k: str(v) for k, v in env.items()})
        arms.append(_arm(table["name"], items, where))
    return arms


@functools.cache
def nccl_variables() -> frozenset[str]:
    """Every NCCL_* variable NCCL reads (nccl_variables.txt, from NCCL's sources)."""
    text = (resources.files("commbench.ab") / "nccl_variables.txt").read_text()
    return frozenset(line for line in text.split() if line.startswith("NCCL_"))


def unknown_nccl_variables(arm: Arm) -> list[str]:
    """One warning per NCCL_* variable the arm sets that NCCL does not read, with the
    names it may have meant: a misspelling changes nothing, and the arm would measure
    the reference again."""
    known = nccl_variables()
    said = []
    for name in sorted(arm.env):
        if name.startswith("NCCL_") and name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
            meant = f" (did you mean {' or '.join(close)}?)" if close else ""
            said.append(f"arm {arm.name}: {name} is not a variable NCCL reads{meant}")
    return said


def check_arms(arms: list[Arm]) -> None:
    """Two arms at least, distinct names, each arm a difference of its own, and every
    interpreter and library usable, before the first launch; an NCCL_* variable NCCL does
    not read is warned about (NCCL's plugins may read names of their own)."""
    if len(arms) < 2:
        raise UsageError(
            f"arm: an experiment needs a reference and at least one arm (got {len(arms)})"
        )
    seen: dict[str, Arm] = {}
    for arm in arms:
        if arm.name in seen:
            raise UsageError(f"arm: name {arm.name!r} given twice")
        same = next((o for o in seen.values() if not arm.changes(o)), None)
        if same is not None:
            raise UsageError(
                f"arm {arm.name}: changes nothing against arm {same.name} (give nccl-lib=PATH,"
                " python=PATH or NAME=VALUE)"
            )
        seen[arm.name] = arm
    for arm in arms:
        for warning in unknown_nccl_variables(arm):
            print(f"commbench: warning: {warning}", file=sys.stderr)
    for arm in arms:
        if arm.python is not None:
            check_python(arm)
    for arm in arms:
        if arm.nccl_lib is not None:
            check_library(arm)


# What a launch's ranks import: a sweep's every module, torch and the libraries with them
PYTHON_PROBE = "import commbench.sweep.runner, commbench.cli; print(commbench.__version__)"


def check_python(arm: Arm) -> None:
    """The arm's interpreter can run a sweep: imported from a neutral directory (not this
    one, whose commbench would stand in for its own), with the arm's environment, every
    module a launch's ranks import."""
    found = shutil.which(arm.python) if arm.python else None
    if found is None:
        raise UsageError(f"arm {arm.name}: python: no such interpreter (got {arm.python!r})")
    env = {**os.environ, **arm.env}
    with tempfile.TemporaryDirectory(prefix="commbench-arm-") as neutral:
        done = subprocess.run(
            [found, "-c", PYTHON_PROBE],
            capture_output=True,
            text=True,
            timeout=600,  # importing a CUDA torch takes a while on a loaded machine
            cwd=neutral,
            env=env,
        )
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise UsageError(
            f"arm {arm.name}: python: {arm.python!r} cannot run a sweep"
            f" ({said[-1] if said else f'exit {done.returncode}'}); install it there"
        )


def check_library(arm: Arm) -> None:
    """The sweep's own --nccl-lib checks: symbols always; torch imported with it preloaded
    where the arm runs this interpreter (another interpreter's launch checks its own)."""
    from commbench.env.preload import check_compatible, check_preloadable

    path = Path(str(arm.nccl_lib))
    try:
        if arm.python is None:
            check_compatible(path, {**os.environ, **arm.env})
        else:
            check_preloadable(path)
    except UsageError as err:
        raise UsageError(f"arm {arm.name}: {err}") from err
