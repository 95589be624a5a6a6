"""How often does `commbench gate` cry wolf, and how often does it catch a slowdown?

Real A/A runs (the same sweep, one after another on this machine), never resampled
from one run:
  (a) the between-run spread per setting: how much a collective/variant's geometric
      mean drifts between runs (shared by its rows) and how much each row wobbles on
      top of it; these are the figures behind commbench/priors.py;
  (b) false alarms: every pair of runs gated against each other (one baseline run),
      and every run against draws of 5 other runs (a history); goal <= 5% exit 1;
  (c) power: the current run made 1.10x, 1.25x and 2x slower at every row; goals: 2x
      caught >= 95% with one baseline, 1.25x >= 90% with a history of 5;
  (d) the minimum detectable shift the gate reported in those cases, to hold against
      the power it had.

    # make 10 runs of each setting, one sweep at a time under the machine's lock
    python benchmarks/gate_power.py make /tmp/runs --runs 10 --lock /work/measure.lock
    # judge runs already made (a directory of setting directories of runs)
    python benchmarks/gate_power.py analyse /tmp/runs
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from commbench.analysis.gate import AGGREGATE_TOLERANCE, gate_runs
from commbench.analysis.gate_verdict import GateResult
from commbench.analysis.medians import run_medians
from commbench.analysis.priors import prior_for
from commbench.analysis.stats import Spread, detectable_shift, family_confidence, pool
from commbench.errors import ExitCode
from commbench.rundir.meta import RunMeta
from commbench.rundir.reader import Run, read_run
from commbench.rundir.schema import RESULTS_CSV

ISSUE = [  # issue 14's A/A experiment: 2 rows per collective and variant
    "--tokens", "128,512", "--hidden", "1024", "--tp", "2",
    "--collectives", "all_gather,reduce_scatter", "--variants", "list,tensor",
    "--dtypes", "bfloat16",
]  # fmt: skip
SETTINGS = {
    "gloo2-issue": ["--nproc", "2", *ISSUE],
    "gloo2-issue-r5": ["--nproc", "2", *ISSUE, "--rounds", "5"],
    "gloo4-ci": ["--nproc", "4", "--config", "configs/ci.toml"],
}
FACTORS = (1.10, 1.25, 2.0)
HISTORY = 5
DRAWS = 3  # histories drawn per current run


def make_runs(root: Path, count: int, lock: Path | None) -> None:
    """`count` runs of every setting, interleaved (run i of each, then run i + 1), so the
    machine's slow changes spread over the settings; each sweep alone under `lock`."""
    for i, (name, args) in itertools.product(range(count), SETTINGS.items()):
        out = root / name / f"run-{i}"
        if (out / RESULTS_CSV).exists():
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        print(f"{name} run {i} -> {out}", flush=True)
        command = [sys.executable, "-m", "commbench", "sweep", *args, "--out", str(out)]
        with open(lock or "/dev/null") as handle:
            if lock:
                fcntl.flock(handle, fcntl.LOCK_EX)
            subprocess.run([*command, "--label", f"{name}-{i}"], check=True, capture_output=True)


def slowed(run: Run, factor: float) -> Run:
    """The run with every row `factor` times slower (what the gate reads is the median)."""
    results = run.results.copy()
    for column in ("time_us", "ci_low_us", "ci_high_us"):
        results[column] *= factor
    return replace(run, results=results)


def spread(runs: list[Run]) -> tuple[float, float, int]:
    """Between-run log sd shared by a collective/variant's rows, each row's own on top
    of it, and the rows per group (variances averaged over the groups)."""
    medians = run_medians(runs)
    groups: dict[tuple, list[tuple]] = {}  # (collective, variant) -> keys timed in every run
    for key in medians.index:
        if not np.isnan(medians.of(key)).any():
            groups.setdefault(key[:2], []).append(key)
    shared, own, sizes = [], [], []
    for keys in groups.values():
        logs = medians.logs(keys)
        n, k = logs.shape
        drift = logs.mean(axis=1)  # each run's mean log over the rows
        residual = logs - logs.mean(axis=0) - (drift - drift.mean())[:, None]
        row_var = (residual**2).sum() / ((n - 1) * (k - 1)) if k > 1 else 0.0
        own.append(row_var)
        shared.append(max(drift.var(ddof=1) - row_var / k, 0.0))
        sizes.append(k)
    return float(np.sqrt(np.mean(shared))), float(np.sqrt(np.mean(own))), int(np.median(sizes))


def cases(runs: list[Run], rng: random.Random) -> dict[str, list[tuple[list[Run], Run]]]:
    one = [([a], b) for a, b in itertools.combinations(runs, 2)]
    history = []
    for current in runs:
        others = [r for r in runs if r is not current]
        if len(others) >= HISTORY:
            history += [(rng.sample(others, HISTORY), current) for _ in range(DRAWS)]
    return {"one baseline run": one, f"history of {HISTORY} runs": history}


def rate(results: list[GateResult]) -> str:
    fired = sum(r.exit_code == ExitCode.REGRESSION for r in results)
    rows = sum(r.counts["regression"] > 0 for r in results)
    aggregates = sum(len(r.aggregate_regressions) > 0 for r in results)
    return (
        f"{fired / len(results):6.1%} ({fired}/{len(results)}; rows {rows}, aggregates"
        f" {aggregates})"
    )


def detectable(results: list[GateResult]) -> str:
    """The aggregates' minimum detectable shift the gate reported: median and range."""
    values = np.concatenate([r.aggregates["detectable"].to_numpy() for r in results])
    return f"{np.median(values):.2f}x ({values.min():.2f}-{values.max():.2f})"


def detectable_by_history(aggregate_sd: float, rows: int, groups: int, meta: RunMeta) -> str:
    """The aggregates' minimum detectable shift the gate would report with N baseline
    runs that spread as measured here (the prior pooled with N - 1 degrees of freedom)."""
    backend = meta.backend
    prior = prior_for(backend, meta.world_size, meta.rounds)
    cells = []
    for n in (1, 3, 5, 10, 20, 50):
        history = Spread(aggregate_sd, n - 1, "") if n > 1 else None
        pooled = pool(prior.aggregate(rows), history)
        shift = detectable_shift(pooled, n, AGGREGATE_TOLERANCE[backend], family_confidence(groups))
        cells.append(f"{n}: {shift:.2f}x")
    return ", ".join(cells)


def analyse_setting(name: str, runs: list[Run]) -> None:
    shared, own, rows = spread(runs)
    aggregate = np.sqrt(shared**2 + own**2 / rows)
    print(
        f"\n{name}: {len(runs)} runs, {rows} rows per collective/variant; between-run log sd:"
        f" shared {shared:.3f}, row {own:.3f}, geomean of {rows} rows {aggregate:.3f}"
    )
    groups = len(gate_runs(runs[:1], runs[1]).aggregates)
    print(
        f"  aggregate detectable with N baseline runs spreading like these:"
        f" {detectable_by_history(aggregate, rows, groups, runs[0].meta)}"
    )
    for kind, judged in cases(runs, random.Random(0)).items():
        if not judged:
            continue
        clean = [gate_runs(base, current) for base, current in judged]
        print(f"  {kind:18} A/A false alarms {rate(clean)}; detectable {detectable(clean)}")
        for factor in FACTORS:
            caught = [gate_runs(base, slowed(current, factor)) for base, current in judged]
            print(f"  {kind:18} x{factor:.2f} caught    {rate(caught)}")


def issue_experiment(runs: list[Run]) -> None:
    """Issue 14's check: six runs, all 15 pairs, and the sixth against the other five;
    on every six consecutive runs, so that one set's luck is not the whole answer."""
    for first in range(len(runs) - 5):
        six = runs[first : first + 6]
        pairs = [gate_runs([a], b) for a, b in itertools.combinations(six, 2)]
        history = gate_runs(six[:5], six[5])
        print(
            f"issue 14 on runs {first}-{first + 5} of gloo2-issue: {rate(pairs)} of the 15 pairs"
            f" exit 1; run {first + 5} against the five before it: exit {history.exit_code}"
        )


def finished_runs(setting: Path) -> list[Run]:
    """The setting's complete runs in the order they were made (run-0, run-1, ...)."""
    paths = sorted(
        (p for p in setting.glob("run-*") if (p / RESULTS_CSV).exists()),
        key=lambda p: int(p.name.removeprefix("run-")),
    )
    runs = [read_run(p) for p in paths]
    return [run for run in runs if run.meta.finished]


def analyse(root: Path) -> None:
    print("(each sweep ran alone; other developers' tests ran between sweeps)")
    for setting in sorted(p for p in root.iterdir() if p.is_dir()):
        runs = finished_runs(setting)
        if len(runs) >= 2:
            analyse_setting(setting.name, runs)
        if setting.name == "gloo2-issue" and len(runs) >= 6:
            print()
            issue_experiment(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make", help="make runs of every setting")
    make.add_argument("root", type=Path)
    make.add_argument("--runs", type=int, default=10)
    make.add_argument("--lock", type=Path, help="flock this file around each sweep")
    judge = commands.add_parser("analyse", help="judge runs already made")
    judge.add_argument("root", type=Path)
    args = parser.parse_args()
    if args.command == "make":
        make_runs(args.root, args.runs, args.lock)
    else:
        analyse(args.root)


if __name__ == "__main__":
    main()
