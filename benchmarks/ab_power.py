"""How often does `commbench ab` cry wolf, and how fast does it find a real slowdown?

Live experiments take minutes each, too few for error rates. So real interleaved
launches are recorded once (`record`: one `commbench ab` experiment with a fixed number
of pairs, the reference and slowed arms in seeded ABBA blocks, every launch an ordinary
run directory), and the decision procedure is replayed over many random draws of the
recorded blocks (`analyse`): the SAME code as the command (`commbench.analysis.ab.replay`),
no launch twice in one replay, each replay paired as the command pairs (within a block).

- A/A: the reference's launches of neighbouring blocks (2m, 2m + 1) paired with each
  other; goal: at most 5% end in exit 1.
- Power: each slowed arm against the reference; goal for the 1.25x arm: exit 1 with the
  slowed collective "slower" in at least 90% within 10 pairs; the pairs needed (median)
  and the wall time they cost, from the recorded launch times.
- Today's way: one launch a side read by `compare` (its prior's intervals): how often it
  marks the slowed collective.
- The target effect: a fraction F planted makes a ratio that moves with the machine
  (SLOWED says what each F measured), so each slowed arm's F aims near its target ratio,
  its ratio is measured from the launches, and the slowed launches
  are replayed once more with the collective's rows scaled so that the ratio over all
  blocks is exactly the target (the recorded noise, the target effect).
- `live`: whole `commbench ab` experiments, to check the replay against (exit codes).
  Their launches are interleaved and alone on the machine too, so `analyse` also reads
  several experiments together as one recording (blocks never mixed across them): the
  A/A experiments' two arms are paired as they ran.

The slowdown is real: tests/support/slowdown's sitecustomize on the arm's PYTHONPATH
makes its ranks' all_reduce calls wait F times their recent mean time longer; the ratio
that planted is measured from the recording and printed beside the rates.

    python benchmarks/ab_power.py record results/ab-rec --pairs 40            # 121 launches
    python benchmarks/ab_power.py analyse results/ab-rec --draws 2000
    python benchmarks/ab_power.py live results/ab-live --experiments 5
    python benchmarks/ab_power.py analyse results/ab-live/slow125-* results/ab-live/same-*
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np

from commbench.analysis.ab import Design, Pair, launch_times, replay
from commbench.analysis.compare import compare_runs
from commbench.rundir.reader import read_run

ROOT = Path(__file__).resolve().parent.parent
SLOWDOWN = ROOT / "tests" / "support" / "slowdown"
COLLECTIVE = "all_reduce"  # the slowed collective
# slowed arm -> (the ratio it is for, the fraction F planted). The ratio a fraction makes
# moves with the machine (0.25: 1.20x, 0.31: 1.22x, 0.35: 1.30x, each over 40-50 blocks
# made hours apart), so F aims between them and `analyse` also scales to the exact ratio.
SLOWED = {"slow125": (1.25, 0.33), "slow110": (1.10, 0.125)}
SAME = "same"  # the A/A arm of `live`: nothing changed
SWEEP = ["--nproc", "4", "--config", str(ROOT / "configs" / "ci.toml")]
MAX_PAIRS, MIN_PAIRS, BAND = 10, 3, 0.05


def arm_flags(arms: list[str]) -> list[str]:
    flags = ["--arm", "base"]
    for name in arms:
        fraction = SLOWED[name][1]
        path = f"{SLOWDOWN}{os.pathsep}{ROOT}"
        flags += [
            "--arm",
            f"{name}:PYTHONPATH={path},COMMBENCH_TEST_SLOWDOWN={COLLECTIVE}={fraction}",
        ]
    return flags


def ab(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "commbench", "ab", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def record(out: Path, pairs: int, sweep: list[str], seed: int) -> None:
    """One experiment of exactly `pairs` blocks: a band no interval can decide in, one
    look at the end (the recording, not a decision)."""
    args = [*arm_flags(list(SLOWED)), *sweep, "--out", str(out), "--seed", str(seed)]
    args += ["--min-pairs", str(pairs), "--max-pairs", str(pairs), "--band", "1e-9"]
    done = ab(args)
    print(done.stdout[-2000:], done.stderr[-2000:], f"exit {done.returncode}", sep="\n")


# A launch in a recording of several experiments: (experiment, launch index); a block,
# (experiment, block). Blocks never span experiments.
Launch = tuple[int, int]


def load(roots: list[Path]) -> tuple[list[str], dict[Launch, object], dict, float]:
    """The arms, every measured launch's times, (experiment, block) -> arm -> launch, and
    the mean seconds a launch took, over one or more experiments of the same arms."""
    arms: list[dict] = []  # as experiment.json has them: a slowed arm's fraction too
    times, blocks, seconds = {}, {}, []
    for number, root in enumerate(roots):
        state = json.loads((root / "experiment.json").read_text())
        arms = arms or state["design"]["arms"]
        if state["design"]["arms"] != arms:
            raise SystemExit(f"{root}: other arms than {roots[0]}'s")
        for launch in state["launches"]:
            if launch["status"] == "ok" and launch["block"] >= 0:
                key = (number, launch["index"])
                times[key] = launch_times(read_run(root / launch["dir"]).results)
                blocks.setdefault((number, launch["block"]), {})[launch["arm"]] = key
                seconds.append(launch["seconds"])
    complete = {b: found for b, found in blocks.items() if len(found) == len(arms)}
    return [arm["name"] for arm in arms], times, complete, float(np.mean(seconds))


def draws(candidates: list[Pair], rng: random.Random, count: int) -> list[list[list[Pair]]]:
    """`count` replays, each MAX_PAIRS distinct candidate pairs in a random order."""
    size = min(MAX_PAIRS, len(candidates))
    return [[[pair] for pair in rng.sample(candidates, size)] for _ in range(count)]


def judge(name: str, times, replays, seconds: float, slowed: bool) -> None:
    design = Design(["base", name], BAND, MIN_PAIRS, MAX_PAIRS)
    verdicts, needed, caught = [], [], 0
    for blocks in replays:
        last, said = replay(times, blocks, design)
        verdicts.append(said)
        needed.append(last.pairs)
        mine = [e for e in last.estimates if e.name == COLLECTIVE and e.kind == "collective"]
        caught += said == "regression" and bool(mine) and mine[0].decision == "slower"
    n = len(verdicts)
    rates = {v: verdicts.count(v) / n for v in ("decided", "regression", "undecided")}
    line = ", ".join(f"{v} {r:.1%}" for v, r in rates.items())
    print(f"  {name:8} {n} replays: {line}")
    if slowed:
        found = [p for p, v in zip(needed, verdicts, strict=True) if v == "regression"]
        median = float(np.median(found)) if found else math.nan
        print(
            f"           {COLLECTIVE} found slower: {caught / n:.1%}; pairs needed (median of"
            f" the found) {median:g}, about {median * 2 * seconds / 60:.1f} min of launches"
        )


def todays_way(roots: list[Path], times: dict, complete: dict, name: str) -> None:
    """One launch a side, read by `compare`: how often its interval marks the collective."""
    marked = 0
    for arms in complete.values():
        runs = [read_run(_launch_dir(roots, arms[a])) for a in ("base", name)]
        aggregates = compare_runs(runs, ["base", name]).aggregates
        row = aggregates[aggregates["group"] == f"collective {COLLECTIVE}"].iloc[0]
        marked += bool(row["low"] > 1)
    print(
        f"  {name:8} compare, one launch a side: {COLLECTIVE} marked slower in"
        f" {marked}/{len(complete)}"
    )


def _launch_dir(roots: list[Path], launch: Launch) -> Path:
    root = roots[launch[0]]
    state = json.loads((root / "experiment.json").read_text())
    return root / state["launches"][launch[1]]["dir"]


def analyse(roots: list[Path], count: int, seed: int) -> None:
    arms, times, complete, seconds = load(roots)
    rng = random.Random(seed)
    ordered = sorted(complete)
    print(f"{' '.join(map(str, roots))}: {len(complete)} complete blocks, {seconds:.1f} s a launch")
    if SAME in arms:  # A/A experiments: their two arms, as they ran
        aa = [Pair(SAME, b, complete[b]["base"], complete[b][SAME]) for b in ordered]
    else:  # a recording of slowed arms: the reference's launches of neighbouring blocks
        aa = [
            Pair(SAME, b, complete[b]["base"], complete[(b[0], b[1] + 1)]["base"])
            for b in ordered
            if b[1] % 2 == 0 and (b[0], b[1] + 1) in complete
        ]
    judge(SAME, times, draws(aa, rng, count), seconds, slowed=False)
    for name in (arm for arm in arms if arm in SLOWED):
        pairs = [Pair(name, b, complete[b]["base"], complete[b][name]) for b in ordered]
        planted = np.exp(np.mean([_collective_log_ratio(times, p) for p in pairs]))
        print(f"  {name:8} {COLLECTIVE} measured ratio over all blocks {planted:.3f}x")
        judge(name, times, draws(pairs, rng, count), seconds, slowed=True)
        todays_way(roots, times, complete, name)
        target = SLOWED[name][0]
        exact = at_ratio(times, pairs, target / planted)
        print(f"  {name:8} the same launches, {COLLECTIVE} scaled by {target / planted:.3f}"
              f" to {target:.2f}x (the recorded noise, the target effect):")  # fmt: skip
        judge(name, exact, draws(pairs, rng, count), seconds, slowed=True)


def at_ratio(times: dict, pairs: list[Pair], factor: float) -> dict:
    """The launch times with the slowed arm's COLLECTIVE rows `factor` times slower: its
    measured ratio moved to the nominal one, every launch's noise kept."""
    scaled = dict(times)
    for pair in pairs:
        launch = times[pair.launch]
        mine = launch.index.get_level_values("collective") == COLLECTIVE
        scaled[pair.launch] = launch.where(~mine, launch * factor)
    return scaled


def _collective_log_ratio(times, pair: Pair) -> float:
    ref, arm = times[pair.reference], times[pair.launch]
    rows = [k for k in ref.index if k[0] == COLLECTIVE and k in arm.index]
    return float(np.mean([math.log(arm[k] / ref[k]) for k in rows]))


def live(root: Path, experiments: int, sweep: list[str], only: list[str]) -> None:
    """Whole experiments of each kind; their exit codes, to hold the replay against."""
    for kind in [SAME, *SLOWED]:
        if only and kind not in only:
            continue
        codes = []
        for i in range(experiments):
            flags = arm_flags([kind]) if kind in SLOWED else ["--arm", "base"]
            if kind == SAME:
                flags += ["--arm", f"{SAME}:COMMBENCH_AB_NOTHING=1"]
            args = [*flags, *sweep, "--out", str(root / f"{kind}-{i}"), "--seed", str(i)]
            args += ["--min-pairs", str(MIN_PAIRS), "--max-pairs", str(MAX_PAIRS)]
            codes.append(ab([*args, "--band", str(BAND)]).returncode)
            print(f"  live {kind:8} exit codes so far {codes}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="record interleaved launches")
    rec.add_argument("root", type=Path)
    rec.add_argument("--pairs", type=int, default=40)
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--sweep", default=" ".join(SWEEP), help="the sweep flags of every launch")
    judged = commands.add_parser("analyse", help="replay the decision over the recording")
    judged.add_argument("roots", type=Path, nargs="+", help="experiments of the same arms")
    judged.add_argument("--draws", type=int, default=2000)
    judged.add_argument("--seed", type=int, default=0)
    run = commands.add_parser("live", help="whole experiments of each kind")
    run.add_argument("root", type=Path)
    run.add_argument("--experiments", type=int, default=5)
    run.add_argument("--sweep", default=" ".join(SWEEP))
    run.add_argument("--kinds", default="", help=f"of {SAME}, " + ", ".join(SLOWED) + " (all)")
    args = parser.parse_args()
    if args.command == "record":
        record(args.root, args.pairs, args.sweep.split(), args.seed)
    elif args.command == "analyse":
        analyse(args.roots, args.draws, args.seed)
    else:
        live(
            args.root,
            args.experiments,
            args.sweep.split(),
            args.kinds.split(",") if args.kinds else [],
        )


if __name__ == "__main__":
    main()
