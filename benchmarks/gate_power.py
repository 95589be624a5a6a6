"""How often does `commbench gate` cry wolf, and how often does it catch a slowdown?

Issue 4's benchmark, on real samples from this machine:
  (a) false alarms: every pair of real A/A runs (same config, same machine) gated
      against each other; goal at most 5% of pairs failing;
  (b) power: the current run's samples scaled by 1.10 and by 1.25 (a slowdown of every
      row, the shape of a typical NCCL regression); goal at least 90% caught at 1.25.
It also reports the same with a history of baselines, and the spread of A/A ratios
that the default gloo tolerances in commbench/gate.py come from.

    python benchmarks/gate_power.py --runs 10              # makes 10 runs of configs/ci.toml
    python benchmarks/gate_power.py --reuse results/aa     # judges runs already made
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from commbench.gate import EXIT_REGRESSION, run_gate
from commbench.results import RESULTS_CSV, SAMPLES_CSV


def make_runs(directory: Path, count: int, nproc: int, config: str) -> None:
    for i in range(count):
        out = directory / f"run-{i:02d}"
        if (out / RESULTS_CSV).exists():
            continue
        print(f"sweep {i + 1}/{count} -> {out}", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "commbench",
                "sweep",
                "--nproc",
                str(nproc),
                "--config",
                config,
                "--out",
                str(out),
                "--label",
                f"aa-{i:02d}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def scaled_copy(run: Path, factor: float, scratch: Path) -> Path:
    """The run with every sample (and so every median) `factor` times slower."""
    out = scratch / f"{run.name}-x{factor}"
    if not out.exists():
        shutil.copytree(run, out)
        samples = pd.read_csv(run / SAMPLES_CSV)
        samples["time_us"] *= factor
        samples.to_csv(out / SAMPLES_CSV, index=False)
    return out


def judge(pairs, tolerance, aggregate_tolerance) -> str:
    """Share of pairs that fail the gate: by any row, by an aggregate, by either."""
    by_row = by_aggregate = either = 0
    for baselines, current in pairs:
        result = run_gate(baselines, current, tolerance, aggregate_tolerance)
        rows = result.counts["regression"] > 0
        aggregate = len(result.aggregate_regressions) > 0
        by_row += rows
        by_aggregate += aggregate
        either += result.exit_code == EXIT_REGRESSION
    n = len(pairs)
    return (
        f"gate {either / n:6.1%} (rows {by_row / n:6.1%}, aggregates {by_aggregate / n:6.1%})"
        f" of {n} pairs"
    )


def aa_spread(runs: list[Path]) -> None:
    """The A/A ratios that the default tolerances are read from."""
    row_ratios, aggregate_ratios = [], []
    for a, b in itertools.combinations(runs, 2):
        result = run_gate([a], b, None, None)
        row_ratios += list(result.rows["ratio"].dropna())
        aggregate_ratios += list(result.aggregates["geomean"])
    for name, ratios in (("row", row_ratios), ("aggregate", aggregate_ratios)):
        deviation = np.abs(np.log(ratios))
        q = np.exp(np.percentile(deviation, [50, 95, 99, 100])) - 1
        print(
            f"A/A {name} |ratio - 1|: median {q[0]:.1%}, p95 {q[1]:.1%}, "
            f"p99 {q[2]:.1%}, max {q[3]:.1%} ({len(ratios)} ratios)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--nproc", type=int, default=4)
    parser.add_argument("--config", default="configs/ci.toml")
    parser.add_argument("--reuse", type=Path, help="directory of runs already made")
    parser.add_argument("--tolerance", type=float, help="row tolerance (default per backend)")
    parser.add_argument("--aggregate-tolerance", type=float)
    args = parser.parse_args()

    directory = args.reuse or Path(tempfile.mkdtemp(prefix="gate-power-"))
    if not args.reuse:
        make_runs(directory, args.runs, args.nproc, args.config)
    runs = sorted(p for p in directory.iterdir() if (p / RESULTS_CSV).exists())
    scratch = Path(tempfile.mkdtemp(prefix="gate-power-scaled-"))
    print(f"{len(runs)} runs in {directory}")
    pairs = [([a], b) for a, b in itertools.permutations(runs, 2)]
    rng = random.Random(0)
    history = [  # every run as the current one, against 3 draws of 4 other runs
        (rng.sample([r for r in runs if r != current], 4), current)
        for current in runs
        for _ in range(3)
    ]
    aa_spread(runs)
    settings = (args.tolerance, args.aggregate_tolerance)
    for name, cases in (("one baseline run", pairs), ("history of 4 runs", history)):
        print(f"{name:17} A/A false alarms  {judge(cases, *settings)}")
        for factor in (1.10, 1.25):
            slowed = [(base, scaled_copy(cur, factor, scratch)) for base, cur in cases]
            print(f"{name:17} x{factor:.2f} caught      {judge(slowed, *settings)}")


if __name__ == "__main__":
    main()
