"""How often does `commbench gate` cry wolf, how often does it catch a slowdown, and does it
ever pass blind?

Real A/A runs (the same sweep, again and again on one quiet machine), never resampled
from one run. Per setting, the runs are split by time: the first half fits the priors
(priors.py's figures: the drift a collective/variant's rows share and each row's own
wobble), the second half is judged with them, so no figure is judged on the runs it was
fitted on (out of sample). On the second half:
  (a) false alarms (exit 1) with one baseline run, with a history of 5 runs made back to
      back, and with a history of 5 runs spread over at least an hour; goal <= 5% each;
  (b) a uniform 2x planted into the current run: caught (exit 1) with a history of 5 in
      at least 95%; with one baseline, caught in at least 75% at 4 ranks, and where not
      caught the gate exits 4 (cannot see it), never 0;
  (c) one collective made 1.25x slower, history of 5: caught once, and confirmed (the
      next run, slowed alike and judged on its own, exits 1 too: what `make gate` does);
  (d) one collective made 1.25x slower, history of 5 and three current runs judged
      together (reruns, `gate --current-runs 3`): caught in at least 80%;
  (e) the exit codes in full, so a reader sees how often each verdict was given.

    # make 20 runs of each setting, a run of each every GAP seconds (the runs then span
    # hours: a history spread over time exists among them), each sweep alone under LOCK
    python benchmarks/gate_power.py make RUNS_DIR --runs 20 --gap 600 --lock LOCKFILE
    # the priors fitted on each setting's first half, in priors.py's format
    python benchmarks/gate_power.py fit RUNS_DIR
    # judge the second halves with them
    python benchmarks/gate_power.py analyse RUNS_DIR
    # or: the unslowed launches of `commbench ab` experiments (benchmarks/ab_power.py),
    # each a 4-rank configs/ci.toml run alone on the machine, as RUNS_DIR/gloo4-ci
    python benchmarks/gate_power.py gather RUNS_DIR EXPERIMENT_DIR...
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from commbench.analysis.gate.history import started
from commbench.analysis.gate.judge import gate_runs
from commbench.analysis.gate.medians import run_medians
from commbench.analysis.gate.priors import Prior
from commbench.errors import ExitCode
from commbench.rundir.reader import Run, read_run
from commbench.rundir.schema import RESULTS_CSV

SMALL = [  # the 2-rank sweep of docs/gate.md: 2 rows per collective and variant
    "--tokens", "128,512", "--hidden", "1024", "--tp", "2",
    "--collectives", "all_gather,reduce_scatter", "--variants", "list,tensor",
    "--dtypes", "bfloat16",
]  # fmt: skip
SETTINGS = {
    "gloo2-small": ["--nproc", "2", *SMALL],
    "gloo2-small-r5": ["--nproc", "2", *SMALL, "--rounds", "5"],
    "gloo4-ci": ["--nproc", "4", "--config", "configs/ci.toml"],
}
HISTORY = 5
RERUNS = 3  # the current runs judged together in the reruns' case
SPREAD_S = 3600.0  # a history "spread over time" spans at least this
ONE_BASELINE_CASES = 2000  # pairs of runs drawn (seeded) where there are more
SLOWDOWN_VARIABLE = "COMMBENCH_TEST_SLOWDOWN"  # an ab arm slowed by tests/support/hooks


def make_runs(root: Path, count: int, gap: float, lock: Path | None, names: list[str]) -> None:
    """`count` runs of every setting named (all where none is), interleaved (run i of
    each, then run i + 1), a round of settings every `gap` seconds, each sweep alone
    under `lock`."""
    chosen = {name: args for name, args in SETTINGS.items() if not names or name in names}
    for i in range(count):
        begun = time.monotonic()
        for name, args in chosen.items():
            out = root / name / f"run-{i}"
            if (out / RESULTS_CSV).exists():
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            print(f"{name} run {i} -> {out}", flush=True)
            command = [sys.executable, "-m", "commbench", "sweep", *args, "--out", str(out)]
            with open(lock or "/dev/null") as handle:
                if lock:
                    fcntl.flock(handle, fcntl.LOCK_EX)
                subprocess.run([*command, "--label", f"{name}-{i}"], check=True)
        time.sleep(max(0.0, gap - (time.monotonic() - begun)))


def slowed(run: Run, factor: float, collective: str | None = None) -> Run:
    """The run with every row (or every row of `collective`) `factor` times slower."""
    results = run.results.copy()
    rows = results["collective"] == collective if collective else slice(None)
    for column in ("time_us", "ci_low_us", "ci_high_us"):
        results.loc[rows, column] *= factor
    return replace(run, results=results)


def fit_prior(runs: list[Run], source: str) -> Prior:
    """priors.py's three figures, from the rows every run timed: the between-run log sd
    shared by a collective/variant's rows, each row's own on top of it (variances averaged
    over the groups), and what a group drifts apart from the run's mean over all its rows
    (the group contrast's variance less the rows' share, averaged over the groups)."""
    medians = run_medians(runs)
    groups: dict[tuple, list[tuple]] = {}  # (collective, variant) -> keys timed in every run
    for key in medians.index:
        if not np.isnan(medians.of(key)).any():
            groups.setdefault(key[:2], []).append(key)
    shared, own = [], []
    for keys in groups.values():
        logs = medians.logs(keys)
        n, k = logs.shape
        drift = logs.mean(axis=1)  # each run's mean log over the rows
        residual = logs - logs.mean(axis=0) - (drift - drift.mean())[:, None]
        row_var = (residual**2).sum() / ((n - 1) * (k - 1)) if k > 1 else 0.0
        own.append(row_var)
        shared.append(max(drift.var(ddof=1) - row_var / k, 0.0))
    row_var = float(np.mean(own))
    every = medians.logs([key for keys in groups.values() for key in keys]).mean(axis=1)
    total = sum(len(keys) for keys in groups.values())
    apart = [  # each group's mean less the run's, its rows' wobble taken out
        (medians.logs(keys).mean(axis=1) - every).var(ddof=1)
        - row_var * (1 / len(keys) - 1 / total)
        for keys in groups.values()
    ]
    return Prior(
        shared_sd=round(float(np.sqrt(np.mean(shared))), 3),
        row_sd=round(float(np.sqrt(row_var)), 3),
        group_sd=round(float(np.sqrt(max(np.mean(apart), 0.0))), 3),
        runs=len(runs),
        source=source,
    )


def prior_entry(runs: list[Run], prior: Prior) -> str:
    """`prior` as a priors.toml entry (commbench/analysis/gate/priors.toml), with what the
    runs say of where and how they were made: what `gate --priors FILE` reads."""
    meta = runs[0].meta
    devices = sorted({d.name or d.type for d in meta.devices}) or ["?"]
    machine = (
        f"{meta.host.cpu_count} CPUs, {', '.join(devices)}, {meta.host.platform},"
        f" torch {meta.versions.torch}, NCCL {meta.versions.nccl_runtime or '-'}"
    )
    hours = span_s(runs) / 3600
    fields = {
        "world_size": meta.world_size,
        "rounds": meta.rounds,
        "shared_sd": prior.shared_sd,
        "row_sd": prior.row_sd,
        "group_sd": prior.group_sd,
        "runs": prior.runs,
        "machine": machine,
        "measured": started(runs[0]).date().isoformat(),
        "sweep": "commbench " + " ".join(meta.host.argv),
        "command": "python " + " ".join(sys.argv),
        "note": f"{len(runs)} runs over {hours:.1f} hours",
    }
    lines = [f"[[{meta.backend}.priors]]"]
    for name, value in fields.items():
        text = value if name == "measured" or not isinstance(value, str) else json.dumps(value)
        lines.append(f"{name} = {text}")
    return "\n".join(lines) + "\n"


# baselines, the current runs judged together, and the next run, which confirms an exit 1
# when it exits 1 on its own (None: not confirmed)
Case = tuple[list[Run], list[Run], Run | None]


def cases(runs: list[Run]) -> dict[str, list[Case]]:
    """The judged runs, in time order: one baseline run (every earlier run against each
    later one; ONE_BASELINE_CASES of those pairs drawn where there are more), a history of
    the 5 runs just before the current one, a history of 5 runs spread over at least
    SPREAD_S before it (5 earlier runs evenly from the first), and RERUNS consecutive
    current runs against the 5 runs just before them."""
    one = [([runs[i]], [runs[j]], runs[j + 1])
           for i, j in itertools.combinations(range(len(runs) - 1), 2)]  # fmt: skip
    if len(one) > ONE_BASELINE_CASES:
        one = random.Random(0).sample(one, ONE_BASELINE_CASES)
    back_to_back, spread = [], []
    for i in range(HISTORY, len(runs) - 1):
        back_to_back.append((runs[i - HISTORY : i], [runs[i]], runs[i + 1]))
        drawn = [runs[k] for k in np.linspace(0, i - 1, HISTORY).round().astype(int)]
        if span_s(drawn) >= SPREAD_S:  # evenly from the first judged run to the last before
            spread.append((drawn, [runs[i]], runs[i + 1]))
    reruns = [(runs[i - HISTORY : i], runs[i : i + RERUNS], None)
              for i in range(HISTORY, len(runs) - RERUNS + 1)]  # fmt: skip
    return {
        "one baseline": one,
        f"history of {HISTORY}, back to back": back_to_back,
        f"history of {HISTORY}, over an hour or more": spread,
        f"history of {HISTORY}, {RERUNS} current runs": reruns,
    }


def span_s(runs: list[Run]) -> float:
    times = [started(run) for run in runs]
    return (max(times) - min(times)).total_seconds()


def verdicts(judged: list[Case], prior: Prior | str, plant: Callable[[Run], Run]) -> Counter:
    """Exit codes of the gate on each case's current runs together, planted; and
    `confirmed`: an exit 1 that the next run, planted alike and judged on its own,
    repeats (`make gate`'s confirmation)."""
    codes: Counter = Counter()
    for baselines, currents, confirm in judged:
        planted = [plant(run) for run in currents]
        code = gate_runs(baselines, planted, prior=prior).exit_code
        codes[int(code)] += 1
        if code == ExitCode.REGRESSION and confirm is not None:
            again = gate_runs(baselines, plant(confirm), prior=prior).exit_code
            codes["confirmed"] += again == ExitCode.REGRESSION
    return codes


def line(codes: Counter, total: int, confirmed: bool, runs: int) -> str:
    """Each exit code's share; a count beside a share that rounds to 0% (a rare alarm).
    `runs`: the distinct runs the cases were drawn from, the sample's real size (pairs of
    runs share their runs' drift)."""
    shares = ", ".join(f"exit {c} {_share(codes[c], total)}" for c in (0, 1, 3, 4) if codes[c])
    of = f"(of {total} cases from {runs} runs)"
    if not confirmed:
        return f"{shares} {of}"
    return f"{shares}; confirmed exit 1 {_share(codes['confirmed'], total)} {of}"


def _share(count: int, total: int) -> str:
    return f"{count / total:.0%}" + (f" ({count})" if 0 < count < total / 200 else "")


def analyse_setting(name: str, runs: list[Run], fit: int | None, shipped: bool) -> None:
    """Judge the runs after the first `fit` (default: half) with the prior fitted on
    those, or with the prior commbench ships (`shipped`: measured on other runs; `fit` 0
    judges them all)."""
    half = len(runs) // 2 if fit is None else fit
    judged = runs[half:]
    if shipped:
        prior: Prior | str = "measured"
        said = "the shipped prior"
    else:
        prior = fit_prior(runs[:half], f"{name} prior (first {half} runs)")
        said = (
            f"prior from runs 0-{half - 1}: shared {prior.shared_sd}, row {prior.row_sd},"
            f" group {prior.group_sd}"
        )
    print(
        f"\n{name}: {said}; judged runs {half}-{len(runs) - 1},"
        f" spanning {span_s(judged) / 3600:.1f} h"
    )
    collective = judged[0].results["collective"].iloc[0]
    plants = {
        "A/A": lambda run: run,
        "uniform 2x": lambda run: slowed(run, 2.0),
        f"{collective} 1.25x": lambda run: slowed(run, 1.25, collective),
    }
    for kind, chosen in cases(judged).items():
        if not chosen:
            print(f"  {kind}: no such case among these runs")
            continue
        confirmed = chosen[0][2] is not None
        runs_in = len({id(run) for base, now, _ in chosen for run in base + now})
        for plant_name, plant in plants.items():
            codes = verdicts(chosen, prior, plant)
            said = line(codes, len(chosen), confirmed, runs_in)
            print(f"  {kind:34} {plant_name:22} {said}")


def gather(out: Path, experiments: list[Path]) -> None:
    """Link every launch of the experiments' unslowed arms (warm-up launches aside) into
    out/gloo4-ci/run-N, in the order they started: runs made alone on the machine."""
    launches = []
    for root in experiments:
        state = json.loads((root / "experiment.json").read_text())
        unslowed = {a["name"] for a in state["design"]["arms"] if SLOWDOWN_VARIABLE not in a["env"]}
        launches += [
            (launch["started"], (root / launch["dir"]).resolve())
            for launch in state["launches"]
            if launch["status"] == "ok" and launch["block"] >= 0 and launch["arm"] in unslowed
        ]
    setting = out / "gloo4-ci"
    setting.mkdir(parents=True, exist_ok=True)
    for number, (_, path) in enumerate(sorted(launches)):
        (setting / f"run-{number}").symlink_to(path)
    print(f"{setting}: {len(launches)} runs from {len(experiments)} experiments")


def finished_runs(setting: Path) -> list[Run]:
    """The setting's complete runs in the order they were made."""
    runs = [read_run(p) for p in setting.glob("run-*") if (p / RESULTS_CSV).exists()]
    return sorted((run for run in runs if run.meta.finished), key=started)


def settings(root: Path) -> list[tuple[str, list[Run]]]:
    return [(p.name, finished_runs(p)) for p in sorted(root.iterdir()) if p.is_dir()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make", help="make runs of every setting")
    make.add_argument("root", type=Path)
    make.add_argument("--runs", type=int, default=20)
    make.add_argument("--gap", type=float, default=600.0, help="seconds between rounds of runs")
    make.add_argument("--lock", type=Path, help="flock this file around each sweep")
    make.add_argument("--settings", default="", help=f"of {', '.join(SETTINGS)} (all)")
    for name, text in (("fit", "the priors of each setting's first half"),
                       ("analyse", "judge each second half out of sample")):  # fmt: skip
        command = commands.add_parser(name, help=text)
        command.add_argument("root", type=Path)
        command.add_argument("--fit", type=int, help="runs that fit the prior (default half)")
    commands.choices["analyse"].add_argument(
        "--shipped", action="store_true", help="judge with the prior commbench ships"
    )
    gathered = commands.add_parser("gather", help="the unslowed launches of ab experiments")
    gathered.add_argument("root", type=Path)
    gathered.add_argument("experiments", type=Path, nargs="+")
    args = parser.parse_args()
    fewest = 0 if getattr(args, "shipped", False) else 2  # runs that can fit a prior
    if getattr(args, "fit", None) is not None and args.fit < fewest:
        parser.error(f"--fit: {args.fit} runs cannot fit a prior (0 only with --shipped)")
    if args.command == "make":
        names = [name for name in args.settings.split(",") if name]
        unknown = set(names) - set(SETTINGS)
        if unknown:
            parser.error(f"--settings: unknown {', '.join(sorted(unknown))}")
        make_runs(args.root, args.runs, args.gap, args.lock, names)
        return
    if args.command == "gather":
        gather(args.root, args.experiments)
        return
    for name, runs in settings(args.root):
        if args.command == "fit" and len(runs) >= 2:
            fitting = runs[: args.fit or len(runs) // 2]
            print(f"# {name}\n" + prior_entry(fitting, fit_prior(fitting, f"{name} prior")))
        elif len(runs) < 2 * (HISTORY + 2):
            print(f"{name}: {len(runs)} runs, too few to split (need {2 * (HISTORY + 2)})")
        else:
            analyse_setting(name, runs, args.fit, args.shipped)


if __name__ == "__main__":
    main()
