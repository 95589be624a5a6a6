"""An A/B experiment: interleaved launches until every interval decides, or the budget ends.

EXPDIR/experiment.json holds the design (arms, sweep flags, band, pairs, seed), every
launch with its status and reason (a failed or hung launch is kept, and retried once),
the pairs and the last look's figures; it is rewritten after every launch, so Ctrl-C or
a crash leaves a consistent experiment that `--resume` continues with the same design.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from commbench.ab.arms import Arm, from_record
from commbench.ab.design import ExperimentDesign
from commbench.ab.launches import Outcome, block_order, foreign_difference, run_launch
from commbench.analysis.ab import (
    Decided,
    Estimate,
    Look,
    Pair,
    launch_times,
    look,
    newly_decided,
    verdict,
)
from commbench.errors import ExitCode, UsageError
from commbench.rundir.reader import read_run

EXPERIMENT_JSON = "experiment.json"
SCHEMA = 2  # 2: contrasts, one-sided sticky decisions, a confidence sequence past the plan
WARMUP = -1  # the block of the warm-up launch: measured, checked, never paired
VERDICT_CODES = {
    "decided": ExitCode.OK,
    "regression": ExitCode.REGRESSION,
    "undecided": ExitCode.UNDECIDED,
    "not comparable": ExitCode.NOT_COMPARABLE,
    "launch failed": ExitCode.INCOMPLETE,
    "refused": ExitCode.USAGE,
    "interrupted": ExitCode.INTERRUPTED,
}


class Experiment:
    """experiment.json in memory; `save` writes it whole (a temporary file, renamed)."""

    def __init__(self, root: Path, state: dict[str, Any]) -> None:
        self.root = root
        self.state = state
        self.settings = ExperimentDesign.from_record(state["design"], str(root / EXPERIMENT_JSON))
        self.arms = [from_record(a) for a in self.settings.arms]
        self.design = self.settings.statistics()

    @classmethod
    def create(cls, root: Path, design: ExperimentDesign) -> Experiment:
        if root.exists() and any(root.iterdir()):
            raise UsageError(
                f"out: '{root}' exists and is not empty (--resume {root} continues it)"
            )
        (root / "launches").mkdir(parents=True, exist_ok=True)
        (root / "logs").mkdir(exist_ok=True)
        state = {"schema": SCHEMA, "design": design.model_dump(), "status": "sampling"}
        state["reason"] = ""
        state.update({"launches": [], "pairs": [], "looks": [], "result": None})
        experiment = cls(root, state)
        experiment.save()
        return experiment

    @classmethod
    def open(cls, root: Path) -> Experiment:
        path = root / EXPERIMENT_JSON
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UsageError(f"resume: cannot read {path}: {err}") from None
        if state.get("schema") != SCHEMA:
            raise UsageError(f"resume: {path} is not an experiment this commbench writes")
        for launch in state["launches"]:  # a launch the last run never saw end
            if launch["status"] in ("running", "interrupted"):
                if _finished(root / launch["dir"]):  # it ended whole before the signal
                    launch.update(status="ok", reason="")
                else:
                    why = "the experiment stopped during it"
                    launch.update(status="interrupted", reason=launch["reason"] or why)
        return cls(root, state)

    def change(self, **settings: float | int) -> None:
        """What a resume may change: the launch timeout, and the budget, raised only (the
        pairs past the planned ones are judged by the confidence sequence: the same
        experiment, extended)."""
        pairs = settings.get("max_pairs")
        if pairs is not None and pairs < self.settings.max_pairs:
            raise UsageError(
                f"max-pairs: a resume may raise the budget, not lower it below"
                f" {self.settings.max_pairs} (got {pairs})"
            )
        changed = {**self.state["design"], **settings}
        self.settings = ExperimentDesign.from_flags(changed)
        self.state["design"] = self.settings.model_dump()
        self.design = self.settings.statistics()

    def save(self) -> None:
        path = self.root / EXPERIMENT_JSON
        spare = path.with_suffix(".json.tmp")
        spare.write_text(json.dumps(self.state, indent=1, default=float) + "\n")
        os.replace(spare, path)

    @property
    def launches(self) -> list[dict[str, Any]]:
        return self.state["launches"]

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def done(self, block: int, arm: str) -> dict[str, Any] | None:
        return next(
            (
                x
                for x in self.launches
                if x["block"] == block and x["arm"] == arm and x["status"] == "ok"
            ),
            None,
        )

    def next_slot(self) -> tuple[int, str]:
        """The first (block, arm) in the order without a measured launch."""
        if self.done(WARMUP, self.design.arms[0]) is None:
            return WARMUP, self.design.arms[0]
        block = 0
        while True:
            for arm in block_order(self.design.arms, self.settings.seed, block):
                if self.done(block, arm) is None:
                    return block, arm
            block += 1

    def pairs(self) -> list[Pair]:
        """Every complete block's pairs: each arm with that block's reference launch."""
        found, block = [], 0
        reference = self.design.arms[0]
        while all(self.done(block, arm) for arm in self.design.arms):
            ref = self.done(block, reference)["index"]
            for arm in self.design.arms[1:]:
                found.append(Pair(arm, block, ref, self.done(block, arm)["index"]))
            block += 1
        return found

    def pairs_per_arm(self, pairs: list[Pair]) -> int:
        """`pairs` come in complete blocks: one pair per arm each."""
        return len(pairs) // (len(self.design.arms) - 1)

    def _looks_before(self, pairs: list[Pair]) -> list[dict[str, Any]]:
        """The looks made before one at `pairs`. A resumed experiment at the pairs of its
        last look makes that look again: the same data, the same share of alpha, the same
        decisions standing before it; never a second share."""
        n = self.pairs_per_arm(pairs)
        return [made for made in self.state["looks"] if made["pairs"] < n]

    def previous_look(self, pairs: list[Pair]) -> int:
        """The pairs of the look made before one at `pairs` (0 for the first)."""
        before = self._looks_before(pairs)
        return before[-1]["pairs"] if before else 0

    def standing(self, pairs: list[Pair]) -> Decided:
        """The decisions the looks before one at `pairs` made: they stand."""
        before = self._looks_before(pairs)
        records = before[-1]["decided"] if before else []
        return {e.key: e for e in map(Estimate.from_record, records)}

    def launch_path(self, launch: dict[str, Any]) -> Path:
        return self.root / launch["dir"]


def run_experiment(
    experiment: Experiment,
    max_minutes: float | None,
    progress: Callable[[dict[str, Any], Look, float | None], None],
) -> int:
    """Launch, check, pair and look until a verdict; returns the exit code."""
    design = experiment.design
    times: dict[int, Any] = {}
    started = time.monotonic()
    seconds = [x["seconds"] for x in experiment.launches if x["status"] == "ok" and x["seconds"]]
    # Ctrl-C and SIGTERM stop the experiment, even where a shell started it with SIGINT
    # ignored (a background job's: Python then keeps ignoring it, and the launch ran on)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            pairs = experiment.pairs()
            per_block = len(design.arms) * (sum(seconds) / len(seconds) if seconds else 0)
            left = None if max_minutes is None else max_minutes * 60 - (time.monotonic() - started)
            more = experiment.pairs_per_arm(pairs) < design.max_pairs and (
                left is None or per_block < left
            )
            last = _look(experiment, pairs, times, final=not more)
            _record(experiment, pairs, last)
            said = verdict(last, design, more)
            if said != "sampling":
                return _finish(experiment, said)
            progress(experiment.state, last, left)
            block, arm = experiment.next_slot()
            outcome = _launch_twice(experiment, block, arm)
            if outcome.status != "ok":
                status = "refused" if outcome.status == "refused" else "launch failed"
                return _finish(experiment, status, outcome.reason)
            seconds.append(outcome.seconds)
            foreign = _check_identity(experiment, experiment.launches[-1])
            if foreign is not None:  # kept, never paired
                experiment.launches[-1].update(status="not comparable", reason=foreign)
                return _finish(experiment, "not comparable", foreign)
    except KeyboardInterrupt:
        return _finish(experiment, "interrupted", "stopped by a signal; --resume continues")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _finished(path: Path) -> bool:
    """Whether a launch's directory holds a whole, finished run (one that ended before a
    signal reached the experiment, or before the experiment saw it end)."""
    try:
        run = read_run(path)
    except UsageError:
        return False
    return bool(run.meta.finished) and run.meta.stopped is None and not run.incomplete


def _look(experiment: Experiment, pairs: list[Pair], times: dict[int, Any], final: bool) -> Look:
    for pair in pairs:
        for index in (pair.reference, pair.launch):
            if index not in times:
                run = read_run(experiment.launch_path(experiment.launches[index]))
                times[index] = launch_times(run.results)
    previous, standing = experiment.previous_look(pairs), experiment.standing(pairs)
    return look(times, pairs, experiment.design, previous, final, standing)


def _launch_twice(experiment: Experiment, block: int, arm_name: str) -> Outcome:
    """The slot's launch, once more if it fails or hangs; each attempt recorded."""
    settings = experiment.settings
    outcome = Outcome("failed", "not run", 0.0)
    for attempt in (1, 2):
        index = len(experiment.launches)
        name = f"{index:03d}-{arm_name}"
        entry = {"index": index, "arm": arm_name, "block": block, "attempt": attempt}
        entry.update({"dir": f"launches/{name}", "log": f"logs/{name}.log", "status": "running"})
        entry.update({"reason": "", "seconds": None, "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        experiment.launches.append(entry)
        experiment.save()
        try:
            outcome = run_launch(
                experiment.arm(arm_name),
                settings.sweep_args,
                experiment.launch_path(entry),
                experiment.root / entry["log"],
                nproc=settings.nproc,
                launcher=settings.launcher,
                timeout_s=settings.launch_timeout_s,
            )
        except KeyboardInterrupt:
            if _finished(experiment.launch_path(entry)):  # it had ended, whole: kept
                entry.update(status="ok", reason="")
            else:
                entry.update(status="interrupted", reason="stopped by a signal")
            raise
        entry.update(status=outcome.status, reason=outcome.reason, seconds=outcome.seconds)
        experiment.save()
        if outcome.status in ("ok", "refused"):
            return outcome
        if outcome.status == "interrupted":
            raise KeyboardInterrupt
    return outcome


def _check_identity(experiment: Experiment, entry: dict[str, Any]) -> str | None:
    """The launch against the warm-up launch (the reference arm's first)."""
    from commbench.rundir.reader import read_meta

    first = experiment.done(WARMUP, experiment.design.arms[0])
    if first is None or first is entry:
        return None
    own = experiment.arm(entry["arm"]).changes(experiment.arms[0])
    said = foreign_difference(
        read_meta(experiment.launch_path(first)), read_meta(experiment.launch_path(entry)), own
    )
    return None if said is None else f"launch {entry['dir']} differs from the reference in {said}"


def _record(experiment: Experiment, pairs: list[Pair], last: Look) -> None:
    """The pairs and the current look's figures, saved with the next launch's entry."""
    experiment.state["pairs"] = [p.__dict__ for p in pairs]
    experiment.state["result"] = {
        "pairs": last.pairs,
        "look": last.made,
        "alphas": last.alphas,
        "missing_rows": last.missing_rows,
        "estimates": [e.record() for e in last.estimates],
    }
    looks = experiment.state["looks"]
    if last.made and (not looks or looks[-1]["pairs"] < last.pairs):
        standing = newly_decided(last, experiment.standing(pairs))
        looks.append(
            {
                "pairs": last.pairs,
                "previous": looks[-1]["pairs"] if looks else 0,
                "alphas": last.alphas,
                "decided": [e.record() for e in standing.values()],
            }
        )


def _finish(experiment: Experiment, status: str, reason: str = "") -> int:
    experiment.state.update(status=status, reason=reason)
    experiment.save()
    return VERDICT_CODES[status]
