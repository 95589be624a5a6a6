"""`commbench gate`: the CI regression gate, its exit code the verdict."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from commbench.commands.compare import PRIORS_OPTION
from commbench.commands.history import AGE_OPTION, COMMIT_OPTION, KEEP_OPTION
from commbench.errors import UsageError

if TYPE_CHECKING:
    from commbench.analysis.gate.verdict import GateResult


def parse_shift(text: str | None) -> float | None:
    """`1.5x` or `1.5`: a ratio above 1."""
    if text is None:
        return None
    try:
        value = float(text.strip().removesuffix("x").removesuffix("X"))
    except ValueError:
        value = float("nan")
    if not 1 < value < 100:
        raise UsageError(f"detect: must be a ratio above 1 such as 1.5x (got {text!r})")
    return value


def gate(
    runs: list[Path] = typer.Argument(
        ...,
        help="BASELINE... CURRENT: one or more baseline runs (or directories of runs, a "
        "history), then the current run (the last N runs with --current-runs N).",
    ),
    current_runs: int = typer.Option(
        1,
        help="How many of the last RUNS are current runs of the same code (reruns), judged"
        " together: each row's geometric mean over them. The rest are the baseline.",
    ),
    tolerance: float | None = typer.Option(
        None, help="Relative change a row may show before it can regress (default per backend)."
    ),
    aggregate_tolerance: float | None = typer.Option(
        None, help="The same for the geometric mean over a collective's rows."
    ),
    rules: Path | None = typer.Option(None, help="TOML file of per-row tolerances (and detect)."),
    detect: str | None = typer.Option(
        None,
        help="The shift that must be seen, e.g. 1.5x (default per backend: nccl 1.10x,"
        " gloo 2x). Where the gate cannot see it: exit 4.",
    ),
    allow_missing: bool = typer.Option(False, help="Rows missing from CURRENT do not fail."),
    allow_lost: bool = typer.Option(
        False, help="Rows skipped now but measured in the history do not fail."
    ),
    allow_insufficient: bool = typer.Option(
        False, help="Pass even where the gate cannot see the asked shift (no exit 4)."
    ),
    allow_young: bool = typer.Option(
        False,
        help="Exit 0 instead of 4 only while the history is too young to see the asked shift"
        " (more runs would; no gate on it ever has): how a young history grows on main.",
    ),
    allow_mismatch: bool = typer.Option(False, help="Compare even if versions/config differ."),
    record: Path | None = typer.Option(
        None,
        help="Add each current run to this history directory when it is clean: a pass, or"
        " exit 4 while the history is too young to see the asked shift (commbench history).",
    ),
    confirm: bool = typer.Option(
        False,
        help="The first current run alarmed alone (exit 1) and the others are its reruns:"
        " the reruns are judged without it (an alarm is confirmed when it repeats); when"
        " they do not confirm it, --record quarantines them all.",
    ),
    keep: int = KEEP_OPTION,
    max_age_days: float | None = AGE_OPTION,
    commit: str | None = COMMIT_OPTION,
    markdown: Path | None = typer.Option(None, help="Write a markdown report here."),
    junit: Path | None = typer.Option(None, help="Write JUnit XML here (one testcase per row)."),
    json: Path | None = typer.Option(None, help="Write the full verdict as JSON here."),
    priors: Path | None = PRIORS_OPTION,
) -> None:
    """Exit 0 if CURRENT has no regression against BASELINE that it could see, 1 if it has,
    3 if not comparable, 4 if it cannot see the asked shift (docs/ci.md)."""
    from commbench.analysis.gate.judge import run_gate
    from commbench.analysis.gate.priors import load_priors
    from commbench.analysis.gate.rules import load_rules
    from commbench.output.writers import write_gate
    from commbench.paths import check_files, step_summary

    check_files({"markdown": markdown, "junit": junit, "json": json, **step_summary()})
    baselines, currents = split_runs(runs, current_runs)
    if confirm and current_runs < 2:
        raise UsageError("confirm: needs the alarmed run and its rerun (--current-runs 2 or more)")
    for name, value in (("tolerance", tolerance), ("aggregate-tolerance", aggregate_tolerance)):
        if value is not None and not 0 < value < 10:
            raise UsageError(f"{name}: must be a positive fraction such as 0.05 (got {value})")
    result = run_gate(
        baselines,
        currents[1:] if confirm else currents,
        tolerance=tolerance,
        aggregate_tolerance=aggregate_tolerance,
        rules=load_rules(rules),
        detect=parse_shift(detect),
        allow_missing=allow_missing,
        allow_mismatch=allow_mismatch,
        allow_lost=allow_lost,
        allow_insufficient=allow_insufficient,
        priors=load_priors(priors),
    )
    if confirm:
        note = f"--confirm: the alarm's run {currents[0].name} is left out; its reruns are judged"
        result = replace(result, notes=[*result.notes, note])
    if allow_young and young_history(baselines, result):
        note = "exit 4 allowed: the history is too young to see the asked shift (--allow-young)"
        result = replace(result, allow_insufficient=True, notes=[*result.notes, note])
    write_gate(result, markdown, junit, json)
    if record is not None:
        record_verdict(record, currents, result, confirm, keep, max_age_days, commit)
    raise typer.Exit(result.exit_code)


def split_runs(runs: list[Path], current_runs: int) -> tuple[list[Path], list[Path]]:
    """RUNS as (baselines, currents): the last `current_runs` are the current runs."""
    if current_runs < 1:
        raise UsageError(f"current-runs: must be 1 or more (got {current_runs})")
    if len(runs) < 2:
        raise UsageError("runs: need at least a BASELINE and a CURRENT run directory")
    if current_runs >= len(runs):
        raise UsageError(
            f"current-runs: must leave a BASELINE among the {len(runs)} runs (got {current_runs})"
        )
    return runs[:-current_runs], runs[-current_runs:]


def young_history(baselines: list[Path], result: GateResult) -> bool:
    """What the gate cannot see is the history's youth: more baseline runs would see the
    asked shift, and no gate on this history (when BASELINE is one) ever saw it."""
    from commbench.analysis.gate.history import is_history, read_ledger

    if not result.young:
        return False
    history = baselines[0] if len(baselines) == 1 and is_history(baselines[0]) else None
    return history is None or not read_ledger(history).can_see


def record_verdict(
    history: Path,
    currents: list[Path],
    result: GateResult,
    confirm: bool,
    keep: int,
    max_age_days: float | None,
    commit: str | None,
) -> None:
    """`--record`: the current runs join the history when the verdict is clean (a pass, or
    exit 4 while the history is too young to see the asked shift: never a blind run
    once it can, whatever --allow-insufficient says). Runs of an alarm this verdict does
    not confirm (`--confirm`) are quarantined instead: kept, never judged against."""
    from rich.console import Console

    from commbench.analysis.gate.history import admits, commit_from_env, quarantine
    from commbench.commands.history import record_run
    from commbench.errors import ExitCode

    code = result.judged_code
    if confirm and code == ExitCode.OK:
        kept = quarantine(
            history,
            currents,
            "an alarm its rerun did not confirm",
            commit=commit or commit_from_env(),
        )
        for path in kept:
            Console().print(f"quarantined {path.name}: an alarm its rerun did not confirm")
        return
    if admits(history, code, result.young):
        for current in currents:
            record_run(history, current, keep, max_age_days, commit)
        return
    why = {ExitCode.INSUFFICIENT: "the history can see no more with it (a blind run)"}
    Console().print(f"not recorded: exit {code}, {why.get(code, 'not a clean run')}")
