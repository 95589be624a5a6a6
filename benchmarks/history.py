"""Can a CI history be boiled? Histories fed run by run through the gate's whole procedure,
as `make gate` runs it on main: gate the run against the window, the pin and the trend;
confirm an exit 1 with a rerun judged on its own (`--confirm`); record the clean
runs (`--record`, exit 4 only while the history is young, `--allow-young`), quarantine the
runs of an alarm the rerun did not confirm. With a creep planted from a run on (every row
slower by c per run) and without (A/A).

    # NCCL-like histories: drift 1% a run, 0.3% a collective, 0.3% a row; --detect 1.10x
    python benchmarks/history.py simulate --histories 200
    # real runs recorded one after another (RUNS_DIR/<setting>/run-N, or `commbench ab`
    # experiments' unslowed launches gathered by gate_power.py gather), replayed in
    # blocks of consecutive runs so their drift keeps its time structure
    python benchmarks/history.py replay RUNS_DIR --histories 100
    # the rerun of an alarm from another stretch of the recording (a later CI slot)
    python benchmarks/history.py replay RUNS_DIR --histories 100 --rerun later

Per history: 5 pinned seed runs, then `--stable` clean runs, then the creep (or 100 A/A
runs). Reported per planted creep: how often it was caught (a confirmed exit 1) before the
cumulative slowdown passed 1.15 x the asked shift, and the median slowdown when caught; for
A/A: the share of runs with a confirmed alarm, of runs with an unconfirmed one (the rerun
pulled it back: quarantined), and of histories in which the trend test fired at least once.
`--rerun-correlation R` draws the NCCL-like rerun's drift correlated R with the alarm's
(a rerun made right after, on the same node, shares its slow drift).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from commbench.analysis.gate.history import Entry, Pin
from commbench.analysis.gate.judge import DETECT, gate_runs
from commbench.analysis.gate.medians import run_medians
from commbench.analysis.gate.reference import HistoryReference, Reference
from commbench.errors import ExitCode
from commbench.rundir.meta import RunMeta
from commbench.rundir.reader import Run, read_run
from commbench.rundir.schema import KEY_COLUMNS, RESULT_COLUMNS, RESULTS_CSV

SEED = 5  # the pinned seed baseline
KEEP = 20  # the window
CREEPS = (0.01, 0.03, 0.05)
MARGIN = 1.15  # caught before the cumulative slowdown passes MARGIN x the asked shift


@dataclass
class History:
    """The history's state as `make gate` keeps it, in memory."""

    pinned: list[Run]
    window: list[Run] = field(default_factory=list)
    series: list[Entry] = field(default_factory=list)  # every run since the pin
    times: dict[str, dict[tuple, float]] = field(default_factory=dict)  # their medians
    can_see: bool = False

    def reference(self) -> HistoryReference:
        pin = Pin(runs=[e.id for e in self.series[:SEED]], names=[], reason="-", by="-", at="-")
        medians = run_medians(self.pinned)
        return HistoryReference(self.pinned, Reference(medians, pin, self.series, self.times), [])

    def add(self, run: Run) -> None:
        self.window = [*self.window, run][-KEEP:]
        name = f"r{len(self.series)}"
        self.series.append(Entry(id=name, name=name, state="window", started=name, recorded="-"))
        self.times[name] = _times(run)


def _times(run: Run) -> dict[tuple, float]:
    keys = run.results[KEY_COLUMNS].itertuples(index=False, name=None)
    return dict(zip(keys, run.results["time_us"].astype(float), strict=True))


def slowed(run: Run, factor: float) -> Run:
    results = run.results.copy()
    results["time_us"] = results["time_us"] * factor
    return replace(run, results=results)


@dataclass(frozen=True)
class Outcome:
    code: int  # the job's exit code: after the confirmation where there was one
    alarm: bool  # the first look said 1
    trend: bool  # the trend test said regression at the first look


def step(history: History, current: Run, rerun: Callable[[], Run], detect: float) -> Outcome:
    """One CI run of main: `make gate HISTORY=... RECORD=1 GATE_FLAGS=--allow-young`."""
    first = gate_runs(history.window, current, detect=detect, reference=history.reference())
    code = first.judged_code
    trend = bool(
        ((first.aggregates["test"] == "trend") & (first.aggregates["status"] == "regression")).any()
    )
    if code == ExitCode.REGRESSION:  # confirmed only when the rerun alarms on its own
        again = gate_runs(history.window, rerun(), detect=detect, reference=history.reference())
        return Outcome(again.judged_code, True, trend)
    if code == ExitCode.OK:
        history.can_see = True
    young = code == ExitCode.INSUFFICIENT and first.young and not history.can_see
    if code == ExitCode.OK or young:
        history.add(current)
    return Outcome(ExitCode.OK if young else code, False, trend)


def seeded(runs: Iterator[Run]) -> History:
    pinned = [next(runs) for _ in range(SEED)]
    history = History(pinned)
    for run in pinned:
        history.add(run)
    return history


def play(
    runs: Iterator[Run],
    stable: int,
    creep: float | None,
    detect: float,
    rerun: Callable[[], Run],
    length: int = 100,
) -> tuple[float | None, Counter]:
    """A history: the seed, `stable` clean runs, then the creep until caught (its cumulative
    slowdown then, None if never within `length` runs) or `length` A/A runs (counts).
    `rerun`: a fresh run, the confirmation of the newest one."""
    history = seeded(runs)
    counts: Counter = Counter()
    for _ in range(stable):
        step(history, next(runs), rerun, detect)
    for i in range(length):
        factor = (1 + creep) ** (i + 1) if creep else 1.0
        current = slowed(next(runs), factor)
        outcome = step(history, current, lambda f=factor: slowed(rerun(), f), detect)
        counts["runs"] += 1
        counts["alarm"] += outcome.alarm
        counts["confirmed"] += outcome.code == ExitCode.REGRESSION
        counts["trend"] += outcome.trend
        counts["exit 4"] += outcome.code == ExitCode.INSUFFICIENT
        if creep and outcome.code == ExitCode.REGRESSION:
            return factor, counts
    return None, counts


# NCCL-like runs ---------------------------------------------------------------------------

FIXED = dict(backend="nccl", world_size=8, dp=1, tp=8, dtype="bfloat16", hidden=7168)
ROWS = [
    dict(collective=c, variant=v, tokens=t, vocab=0, experts=0, topk=0, skew=0.0, **FIXED)
    for c in ("all_gather", "reduce_scatter")
    for v in ("list", "tensor")
    for t in (1, 64, 512, 4096, 16384)
]
META = RunMeta(
    schema_version=4, backend="nccl", world_size=8, layout="contiguous", config={"rounds": 1}
)


def synthetic(rng: np.random.Generator, drift: float) -> Run:
    """One NCCL-like run drifting by `drift` (log) as a whole, 0.3% a collective/variant,
    0.3% a row; every median around 100 us * 2^(row)."""
    groups = {(r["collective"], r["variant"]) for r in ROWS}
    group = {g: 0.003 * rng.standard_normal() for g in groups}
    results = pd.DataFrame.from_records(ROWS)
    logs = [
        drift + group[(r["collective"], r["variant"])] + 0.003 * rng.standard_normal() for r in ROWS
    ]
    results["time_us"] = 100 * np.exp(np.array(logs)) * 2 ** np.arange(len(ROWS)) / 8
    for column in RESULT_COLUMNS:
        if column not in results:
            results[column] = 0
    results = results.assign(check="pass", samples=20, cv=0.01, iters=1, note="")
    return Run(Path("sim"), results, results.iloc[:0], META)


class Stream:
    """NCCL-like runs drifting 1% (log sd) a run; a rerun's drift correlated `rho` with
    the newest run's (0: independent)."""

    def __init__(self, seed: int, rho: float) -> None:
        self.rng = np.random.default_rng(seed)
        self.rho = rho
        self.last = 0.0

    def __iter__(self) -> Iterator[Run]:
        while True:
            self.last = 0.01 * self.rng.standard_normal()
            yield synthetic(self.rng, self.last)

    def rerun(self) -> Run:
        fresh = 0.01 * self.rng.standard_normal()
        return synthetic(self.rng, self.rho * self.last + math.sqrt(1 - self.rho**2) * fresh)


def simulate(args: argparse.Namespace) -> None:
    detect = DETECT["nccl"]
    print(f"NCCL-like: drift 1% a run, --detect {detect}x, {args.histories} histories each")
    for creep in (None, *CREEPS):
        stream = Stream(args.seed, args.rerun_correlation)
        caught, counts, when = 0, Counter(), []
        for _ in range(args.histories):
            found, seen = play(iter(stream), args.stable, creep, detect, stream.rerun)
            counts += seen
            counts["trend histories"] += seen["trend"] > 0
            caught += found is not None and found <= MARGIN * detect
            when += [found] if found is not None else []
        report(creep, caught, when, counts, args.histories, detect)


# real recorded runs -------------------------------------------------------------------------


def recorded(root: Path) -> dict[str, list[Run]]:
    """RUNS_DIR/<setting>/run-*: each setting's finished runs in the order they started."""
    found = {}
    for setting in sorted(p for p in root.iterdir() if p.is_dir()):
        runs = [read_run(p) for p in setting.iterdir() if (p / RESULTS_CSV).exists()]
        runs = [run for run in runs if run.meta.finished]
        found[setting.name] = sorted(runs, key=lambda run: run.meta.started or "")
    return found


def blocks(runs: list[Run], rng: np.random.Generator, block: int = 10) -> Iterator[Run]:
    """An endless stream of the recording's runs in blocks of `block` consecutive ones,
    each block starting at a random run: the drift between neighbours is kept."""
    while True:
        start = int(rng.integers(0, len(runs) - block))
        yield from runs[start : start + block]


def replay(args: argparse.Namespace) -> None:
    for setting, runs in recorded(args.root).items():
        detect = DETECT.get(runs[0].meta.backend, DETECT["nccl"])
        print(f"{setting}: {len(runs)} recorded runs, --detect {detect}x, rerun {args.rerun}")
        for creep in (None, *CREEPS):
            rng = np.random.default_rng(args.seed)
            caught, counts, when = 0, Counter(), []
            length = 100 if creep is None else int(math.log(2 * detect) / math.log1p(creep))
            later = blocks(runs, np.random.default_rng(args.seed + 1))
            for _ in range(args.histories):
                stream = blocks(runs, rng)
                rerun = stream.__next__ if args.rerun == "next" else later.__next__
                found, seen = play(stream, args.stable, creep, detect, rerun, length)
                counts += seen
                counts["trend histories"] += seen["trend"] > 0
                caught += found is not None and found <= MARGIN * detect
                when += [found] if found is not None else []
            report(creep, caught, when, counts, args.histories, detect)


def report(
    creep: float | None,
    caught: int,
    when: list[float],
    counts: Counter,
    histories: int,
    detect: float,
) -> None:
    if creep is None:
        runs = counts["runs"]
        print(
            f"  A/A: {counts['confirmed']} confirmed alarms in {runs} runs"
            f" ({100 * counts['confirmed'] / runs:.2f}%), {counts['alarm']} first-look alarms"
            f" ({100 * counts['alarm'] / runs:.2f}%), exit 4 {100 * counts['exit 4'] / runs:.1f}%;"
            f" trend fired in {counts['trend histories']} of {histories} histories",
            flush=True,
        )
        return
    median = f"{np.median(when):.3f}x" if when else "-"
    print(
        f"  creep {100 * creep:.0f}% a run: caught before {MARGIN * detect:.3f}x in"
        f" {caught} of {histories} ({100 * caught / histories:.0f}%); median slowdown when"
        f" caught {median}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser("simulate", help="NCCL-like histories")
    sim.add_argument("--rerun-correlation", type=float, default=0.0)
    rep = commands.add_parser("replay", help="histories from real recorded runs")
    rep.add_argument("root", type=Path)
    rep.add_argument(
        "--rerun",
        choices=("next", "later"),
        default="next",
        help="an alarm's rerun: the next recorded run (made right after it), or one from"
        " another block (a later slot, its drift its own)",
    )
    for command in (sim, rep):
        command.add_argument("--histories", type=int, default=100)
        command.add_argument("--stable", type=int, default=20, help="clean runs before it")
        command.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    simulate(args) if args.command == "simulate" else replay(args)


if __name__ == "__main__":
    main()
