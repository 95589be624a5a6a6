"""Do the gate's tests see its calibration? One deliberate bug at a time (a mutant), each in
a copy of the tree, and the test files that should catch it run against it: a mutant
the tests fail on is caught, one they pass survives (a hole in the tests).

    python benchmarks/mutate_gate.py             # every mutant (a few minutes)
    python benchmarks/mutate_gate.py --only two-sided,topk-fill

Each mutant is an exact piece of source and its replacement; a mutant whose piece is
not found exactly once is an error (the source moved on: update the mutant), never a
silent pass. The unmutated copy runs first and must pass.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATE_TESTS = ("tests/analysis/gate/test_gate_calibration.py", "tests/analysis/gate/test_gate.py")
STATS_TESTS = ("tests/analysis/test_stats.py",)
POWER_TESTS = ("tests/analysis/gate/test_power.py",)
PRIOR_TESTS = ("tests/analysis/gate/test_priors.py",)
READER_TESTS = ("tests/rundir/test_reader.py",)
HISTORY_TESTS = ("tests/analysis/gate/test_history.py",)
TREND_TESTS = ("tests/analysis/gate/test_trend.py",)


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


MUTANTS = [
    Mutant(
        "two-sided",  # every test flags a run much faster as well
        "commbench/analysis/gate/verdict.py",
        "if ratio > 1 + tolerance and judged.slower:",
        "if abs(math.log(ratio)) > math.log1p(tolerance) and (judged.slower or judged.faster):",
        GATE_TESTS,
    ),
    Mutant(
        "prior-row-sd-halved",
        "commbench/analysis/gate/priors.py",
        "self.row_sd**2 * (1 - 1 / total)",
        "(self.row_sd / 2) ** 2 * (1 - 1 / total)",
        (*GATE_TESTS, *PRIOR_TESTS),
    ),
    Mutant(
        "prior-aggregate-sd-halved",
        "commbench/analysis/gate/priors.py",
        "return self._spread(self.shared_sd**2 + self.row_sd**2 / max(rows, 1))",
        "return self._spread((self.shared_sd**2 + self.row_sd**2 / max(rows, 1)) / 4)",
        (*GATE_TESTS, *PRIOR_TESTS),
    ),
    Mutant(
        "group-contrast-keeps-shared-drift",  # the drift every group shares not cancelled
        "commbench/analysis/gate/priors.py",
        "self.group_sd**2 + self.row_sd**2 * (1 / rows - 1 / total)",
        "self.shared_sd**2 + self.row_sd**2 * (1 / rows - 1 / total)",
        (*GATE_TESTS, *PRIOR_TESTS),
    ),
    Mutant(
        "overall-at-three-percent",  # the main test spending more than its level
        "commbench/analysis/gate/model.py",
        "OVERALL_LEVEL = 0.01",
        "OVERALL_LEVEL = 0.03",
        GATE_TESTS,
    ),
    Mutant(
        "bonferroni-over-groups",  # the row tests split their level over groups, not rows
        "commbench/analysis/gate/model.py",
        "one_sided(ROW_LEVEL, self.rows)",
        "one_sided(ROW_LEVEL, len(self.groups))",
        GATE_TESTS,
    ),
    Mutant(
        "family-confidence-tests-minus-1",
        "commbench/analysis/stats.py",
        "return 1 - (1 - confidence) / max(tests, 1)",
        "return 1 - (1 - confidence) / max(tests - 1, 1)",
        (*STATS_TESTS, *GATE_TESTS),
    ),
    Mutant(
        "topk-fill",  # schema 4's fill of a routed row's top-k for older runs
        "commbench/rundir/reader.py",
        '"topk": 0,',
        '"topk": 1,',
        READER_TESTS,
    ),
    Mutant(
        "normal-approximation",  # the tolerance floor ignored: power of the test alone
        "commbench/analysis/gate/power.py",
        "np.maximum(critical * grid, floor)",
        "critical * grid",
        POWER_TESTS,
    ),
    Mutant(
        "rounding-read-as-spread",  # runs that agree but for float rounding given a spread
        "commbench/analysis/stats.py",
        "ROUNDING = 1e-12",
        "ROUNDING = 0.0",
        (*STATS_TESTS, *GATE_TESTS),
    ),
    Mutant(
        "detectable-overflows",  # a shift beyond a float raises instead of being infinite
        "commbench/analysis/gate/power.py",
        "return math.inf if log_ratio >= LARGEST_LOG else math.exp(log_ratio)",
        "return math.exp(log_ratio)",
        (*POWER_TESTS, *GATE_TESTS),
    ),
    Mutant(
        "prior-weighs-nine-df",
        "commbench/analysis/gate/priors.py",
        "PRIOR_DF = 4",
        "PRIOR_DF = 9",
        (*GATE_TESTS, *PRIOR_TESTS),
    ),
    Mutant(
        "lost-is-missing",
        "commbench/analysis/gate/judge.py",
        'return "lost" if timed else "skipped"',
        'return "missing"',
        GATE_TESTS,
    ),
    Mutant(
        "insufficient-exits-3",
        "commbench/analysis/gate/verdict.py",
        "return ExitCode.INSUFFICIENT",
        "return ExitCode.NOT_COMPARABLE",
        GATE_TESTS,
    ),
    Mutant(
        "one-side-drifts",  # the current runs' own drift left out of the interval
        "commbench/analysis/stats.py",
        "return spread.sd * math.sqrt(1 / currents + 1 / baselines)",
        "return spread.sd * math.sqrt(1 / baselines)",
        (*STATS_TESTS, *POWER_TESTS, *GATE_TESTS),
    ),
    Mutant(
        "reruns-drift-as-one",  # the mean of current runs judged as if it were one run
        "commbench/analysis/stats.py",
        "return spread.sd * math.sqrt(1 / currents + 1 / baselines)",
        "return spread.sd * math.sqrt(1 + 1 / baselines)",
        (*STATS_TESTS, *POWER_TESTS, *GATE_TESTS),
    ),
    Mutant(
        "needed-for-one-current-run",  # the baseline runs needed, as if one current run
        "commbench/analysis/gate/model.py",
        "wanted**dilution, prior_df, currents",
        "wanted**dilution, prior_df",
        GATE_TESTS,
    ),
    Mutant(
        "prior-never-dropped",  # a history far wider than the prior still pooled with it
        "commbench/analysis/gate/priors.py",
        "if ratio > f.ppf(CONTRADICTED, history.df, measured_df):",
        "if False:",
        PRIOR_TESTS,
    ),
    Mutant(
        "collective-undiluted",  # a collective's detectable shift as if the mean did not move
        "commbench/analysis/gate/model.py",
        "dilution=1 - share",
        "dilution=1.0",
        GATE_TESTS,
    ),
    Mutant(
        "history-records-a-regression",
        "commbench/analysis/gate/history.py",
        "return code == ExitCode.OK or (",
        "return code in (ExitCode.OK, ExitCode.REGRESSION) or (",
        HISTORY_TESTS,
    ),
    Mutant(
        "window-ignores-age",  # --max-age-days asked for, not applied
        "commbench/analysis/gate/history.py",
        "kept = [r for r in kept if started(r) >= oldest]",
        "kept = kept",
        HISTORY_TESTS,
    ),
    Mutant(
        "row-tolerance-on-own-ratio",  # a favourable run drift masks a row's regression
        "commbench/analysis/gate/judge.py",
        'judged_ratio = record["ratio"] if layout.rows == 1 else record["contrast"]',
        'judged_ratio = record["ratio"]',
        GATE_TESTS,
    ),
    Mutant(
        "collective-tolerance-on-own-ratio",  # ... and a collective's
        "commbench/analysis/gate/judge.py",
        'judged_ratio = contrast if test == "collective" else ratio',
        "judged_ratio = ratio",
        GATE_TESTS,
    ),
    Mutant(
        "detectable-from-the-estimate",  # a thin history's spread taken as the true one
        "commbench/analysis/gate/power.py",
        "scale = upper_sd(spread, bound) * math.sqrt(1 / currents + 1 / baselines)",
        "scale = spread.sd * math.sqrt(1 / currents + 1 / baselines)",
        (*POWER_TESTS, *GATE_TESTS),
    ),
    Mutant(
        "pin-at-the-aggregate-tolerance",  # the pin regresses on any shift, not the asked one
        "commbench/analysis/gate/reference.py",
        'found.append(record("pin", group, len(columns), mean, math.nan, judged, detect - 1))',
        'found.append(record("pin", group, len(columns), mean, math.nan, judged, 0.03))',
        HISTORY_TESTS,
    ),
    Mutant(
        "pin-never-regresses",
        "commbench/analysis/gate/reference.py",
        'found.append(record("pin", group, len(columns), mean, math.nan, judged, detect - 1))',
        'found.append(record("pin", group, len(columns), mean, math.nan, judged, 100.0))',
        HISTORY_TESTS,
    ),
    Mutant(
        "trend-finds-no-step",
        "commbench/analysis/gate/trend.py",
        "if statistic > _t_quantile(1 - level / (2 * candidates), df):",
        "if statistic > math.inf:",
        (*HISTORY_TESTS, *TREND_TESTS),
    ),
    Mutant(
        "trend-split-without-bonferroni",  # every split point tested at the whole level
        "commbench/analysis/gate/trend.py",
        "if statistic > _t_quantile(1 - level / (2 * candidates), df):",
        "if statistic > _t_quantile(1 - level / 2, df):",
        TREND_TESTS,
    ),
    Mutant(
        "trend-judges-a-level-only-today-holds",  # the current runs count as the history's
        "commbench/analysis/gate/trend.py",
        "if len(parts) < 2 or latest[1] - latest[0] - current < MIN_SEGMENT:",
        "if len(parts) < 2 or latest[1] - latest[0] < MIN_SEGMENT:",
        TREND_TESTS,
    ),
    Mutant(
        "blind-run-admitted",  # exit 4 joins a history that can see
        "commbench/analysis/gate/history.py",
        "code == ExitCode.INSUFFICIENT and young and not ledger.can_see",
        "code == ExitCode.INSUFFICIENT",
        HISTORY_TESTS,
    ),
    Mutant(
        "unconfirmed-alarm-recorded",  # the runs of an unconfirmed alarm join the window
        "commbench/commands/gate.py",
        "if confirm and code == ExitCode.OK:",
        "if False:",
        HISTORY_TESTS,
    ),
    Mutant(
        "gloo-aggregate-tolerance-10",  # the VM's own level moves fail the gate again
        "commbench/analysis/gate/judge.py",
        'AGGREGATE_TOLERANCE = {"nccl": 0.03, "gloo": 0.50}',
        'AGGREGATE_TOLERANCE = {"nccl": 0.03, "gloo": 0.10}',
        GATE_TESTS,
    ),
    Mutant(
        "confirmed-together",  # the alarm's run in the mean with its rerun: it carries both
        "commbench/commands/gate.py",
        "currents[1:] if confirm else currents,",
        "currents,",
        HISTORY_TESTS,
    ),
    Mutant(
        "a-run-held-twice",  # a copy of a held run joins again
        "commbench/analysis/gate/history.py",
        "    if held is not None:\n        raise UsageError(",
        "    if False:\n        raise UsageError(",
        HISTORY_TESTS,
    ),
    Mutant(
        "judged-against-itself",  # a current run the history holds is judged anyway
        "commbench/analysis/gate/judge.py",
        "        if same is not None:",
        "        if False:",
        HISTORY_TESTS,
    ),
]


def copy_tree(into: Path) -> None:
    """What the tests read: the package, the tests, pytest's settings, committed runs."""
    for name in ("commbench", "tests", "results"):
        shutil.copytree(ROOT / name, into / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")


def run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[bool, float]:
    """Whether the tests pass on `tree`, and how long they took; -x: a catch is enough."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:xdist", "-p", "no:cacheprovider",
         *tests],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
    )  # fmt: skip
    return done.returncode == 0, time.monotonic() - start


def apply(tree: Path, mutant: Mutant) -> None:
    path = tree / mutant.path
    source = path.read_text()
    found = source.count(mutant.before)
    if found != 1:
        raise SystemExit(f"{mutant.name}: {mutant.path} holds its source {found} times, not once")
    path.write_text(source.replace(mutant.before, mutant.after))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated mutant names")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="mutate-gate-") as scratch:
        clean = Path(scratch) / "clean"
        copy_tree(clean)
        every = tuple(sorted({test for m in chosen for test in m.tests}))
        passed, seconds = run_tests(clean, every)
        if not passed:
            raise SystemExit("the unmutated tree fails its own tests: fix that first")
        print(f"unmutated: the {len(every)} test files pass ({seconds:.0f} s)")
        caught = 0
        for mutant in chosen:
            tree = Path(scratch) / mutant.name
            shutil.copytree(clean, tree)
            apply(tree, mutant)
            passed, seconds = run_tests(tree, mutant.tests)
            caught += not passed
            verdict = "survived" if passed else "caught"
            print(f"{mutant.name:34} {verdict:8} ({seconds:.0f} s)", flush=True)
            shutil.rmtree(tree)
        print(f"score: {caught}/{len(chosen)} caught")


if __name__ == "__main__":
    main()
