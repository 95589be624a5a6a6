"""`commbench history list`: the window, the pin, the quarantined runs and the steps the
trend test finds since the pin, with what the gate will say the history lacks."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from commbench.analysis.gate.history import (
    history_notes,
    history_runs,
    read_ledger,
    started,
)
from commbench.analysis.gate.series import read_history_series, trend_steps
from commbench.output.cells import interval


def step_line(step: dict) -> str:
    """`overall: 1.12x (1.05 to 1.19) between run-a and run-b`."""
    group = step["collective"]
    name = "overall" if group == "all" else f"{group}/{step['variant']}"
    span = interval(step["low"], step["high"])
    return f"{name}: {step['ratio']:.3f}x ({span}) between {step['before']} and {step['after']}"


def show_history(history: Path, console: Console) -> None:
    runs = history_runs(history)
    ledger = read_ledger(history)
    for run in runs:
        hosts = ",".join(sorted(set(run.meta.hostnames))) or "-"
        console.print(f"{run.path.name}  started {started(run).isoformat()}  hosts {hosts}")
    console.print(f"{len(runs)} run(s) in {history}")
    if ledger.pin is None:
        console.print("no pinned reference (commbench history pin HISTORY RUN... --reason TEXT)")
    else:
        pin = ledger.pin
        console.print(
            f"pinned: {', '.join(pin.names)}, by {pin.by} at {pin.at}: {pin.reason}",
            soft_wrap=True,
        )
    for entry in ledger.runs:
        if entry.state == "quarantined":
            console.print(f"quarantined: {entry.name} ({entry.reason})", soft_wrap=True)
    steps = trend_steps(read_history_series(history))
    for step in steps:
        console.print(f"step since the pin: {step_line(step)}", soft_wrap=True)
    if ledger.pin is not None and not steps:
        console.print("no step since the pin")
    if runs:  # the span (hosts: the gate compares them with the current run's)
        for note in history_notes(runs, runs[-1:]):
            console.print(f"[yellow]note: {note}[/yellow]", soft_wrap=True)
