"""The folders are layers, each rule read from the source's imports (at the top of a file or
inside a function, directly or through another commbench module):

- what reads results (rundir/, analysis/, output/, export/) never imports what runs a
  sweep (sweep/, ops/, env/, gpucheck/) or torch;
- presentation is on top: nothing in the engine or the readers (sweep/, ab/, ops/, env/,
  config/, rundir/, analysis/, export/, nor the ground modules at the package's top)
  imports output/ or commands/, so each runs without them."""

from __future__ import annotations

import ast

import pytest
from support.imports import module_name
from support.paths import PACKAGE

# Also run under the oldest dependencies pyproject.toml declares (`make floor`).
pytestmark = pytest.mark.floor

READERS = ("rundir", "analysis", "output", "export")
RUNNERS = ("sweep", "ops", "env", "gpucheck")
BELOW_PRESENTATION = ("sweep", "ab", "ops", "env", "config", "rundir", "analysis", "export")
PRESENTATION = ("output", "commands")
GROUND = ("errors", "point", "catalogue", "routing", "console", "units", "paths")


def _imports() -> dict[str, set[str]]:
    """module -> every name it imports (commbench modules, torch, anything)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
        found[module_name(path)] = names
    return found


def _reach(start: str, imports: dict[str, set[str]]) -> set[str]:
    """Every name `start` imports, directly or through the commbench modules it imports."""
    seen, todo = set(), [start]
    while todo:
        for name in imports.get(todo.pop(), ()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "commbench" else None


def _violations(imports: dict[str, set[str]]) -> dict[str, list[str]]:
    """Readers that reach the sweep or torch."""
    bad = {}
    for module in sorted(imports):
        if _layer(module) not in READERS:
            continue
        reached = _reach(module, imports)
        wrong = sorted(
            name for name in reached if name.split(".")[0] == "torch" or _layer(name) in RUNNERS
        )
        if wrong:
            bad[module] = wrong
    return bad


def _below_presentation(imports: dict[str, set[str]]) -> dict[str, list[str]]:
    """Modules of the engine, the readers or the ground that reach output/ or commands/."""
    bad = {}
    for module in sorted(imports):
        if _layer(module) not in (*BELOW_PRESENTATION, *GROUND):
            continue
        wrong = sorted(name for name in _reach(module, imports) if _layer(name) in PRESENTATION)
        if wrong:
            bad[module] = wrong
    return bad


def test_the_layer_rule_sees_a_violation() -> None:
    imports = {
        "commbench.analysis.a": {"commbench.output.b"},
        "commbench.output.b": {"commbench.sweep.timing"},
        "commbench.sweep.timing": {"torch"},
    }
    assert _violations(imports) == {
        "commbench.analysis.a": ["commbench.sweep.timing", "torch"],
        "commbench.output.b": ["commbench.sweep.timing", "torch"],
    }


@pytest.mark.parametrize("layer", READERS)
def test_readers_never_import_the_sweep_or_torch(layer: str) -> None:
    imports = _imports()
    assert any(_layer(m) == layer for m in imports), f"no modules in {layer}/"
    bad = {m: names for m, names in _violations(imports).items() if _layer(m) == layer}
    assert bad == {}


def test_the_presentation_rule_sees_a_violation() -> None:
    imports = {
        "commbench.rundir.writer": {"commbench.paths"},
        "commbench.sweep.dry_run": {"commbench.sweep.plan", "commbench.output.console"},
        "commbench.output.console": {"rich.console"},
        "commbench.commands.sweep": {"commbench.output.console"},
    }
    assert _below_presentation(imports) == {"commbench.sweep.dry_run": ["commbench.output.console"]}


@pytest.mark.parametrize("layer", [*BELOW_PRESENTATION, *GROUND])
def test_nothing_below_presentation_imports_output_or_commands(layer: str) -> None:
    imports = _imports()
    assert any(_layer(m) == layer for m in imports), f"no module {layer} in commbench/"
    bad = {m: names for m, names in _below_presentation(imports).items() if _layer(m) == layer}
    assert bad == {}
