"""What share of a sweep's marginal wall time is spent inside timed samples?

    marginal timed share = (timed work of L - timed work of S) / (wall of L - wall of S)
    timed work of a run  = sum over rows of time_us * iters * samples (results.csv: the
                           max-over-ranks median, K, and the number of samples)

S is one token count, L the same sweep with four: start-up, the report and the points S
has are common to both, so the difference is what L's extra points cost. S and L run
interleaved (who goes first alternates), `--repeat` pairs. Each pair prints its share,
rank 0's phases (meta.json) of L - S as shares of the wall time L adds, and the largest
ratio of a row's first sample to its median in L (the warm-up's proof: a first sample
slower than the rest would show here). Goal: at least 0.6.

    python benchmarks/efficiency.py [--nproc 4] [--repeat 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

GOAL = 0.60
COMMON = ["--hidden", "4096", "--tp", "2", "--collectives", "all_gather,reduce_scatter"]
COMMON += ["--variants", "list,tensor", "--dtypes", "bfloat16"]
TOKENS = {"S": "1024", "L": "1024,2048,4096,8192"}
KEY = ("collective", "variant", "dtype", "tokens", "hidden", "tp", "dp")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def timed_seconds(run: Path) -> float:
    """The run's timed work: what its rows' samples spent inside the K operations."""
    return sum(
        float(r["time_us"]) * int(r["iters"]) * int(r["samples"]) / 1e6
        for r in rows(run / "results.csv")
        if r["samples"] and int(r["samples"]) > 0
    )


def first_sample_ratios(run: Path) -> dict[tuple, float]:
    """Per row: its first sample (round 0) over the median of all its samples."""
    samples = defaultdict(list)
    for r in rows(run / "samples.csv"):
        samples[tuple(r[k] for k in KEY)].append((int(r["round"]), int(r["sample"]), r))
    ratios = {}
    for key, taken in samples.items():
        times = [float(r["time_us"]) for _, _, r in taken]
        first = float(min(taken, key=lambda t: t[:2])[2]["time_us"])
        ratios[key] = first / statistics.median(times)
    return ratios


def sweep(nproc: int, out: Path, tokens: str) -> tuple[float, float, dict]:
    """Wall seconds of one whole `commbench sweep`, its timed work and rank 0's phases."""
    command = [sys.executable, "-m", "commbench", "sweep", "--nproc", str(nproc)]
    command += ["--tokens", tokens, *COMMON, "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)}: exit {done.returncode}\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - started
    return wall, timed_seconds(out), json.loads((out / "meta.json").read_text())["phases"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="pairs of runs, interleaved")
    args = parser.parse_args()
    shares = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(1, args.repeat + 1):
            runs = {}
            for name in ("S", "L") if pair % 2 else ("L", "S"):
                runs[name] = sweep(args.nproc, Path(tmp) / f"{pair}-{name}", TOKENS[name])
            (wall_s, timed_s, phases_s), (wall_l, timed_l, phases_l) = runs["S"], runs["L"]
            added = wall_l - wall_s
            share = (timed_l - timed_s) / added
            shares.append(share)
            print(
                f"pair {pair}: S {wall_s:.1f} s wall, {timed_s:.1f} s timed; L {wall_l:.1f} s"
                f" wall, {timed_l:.1f} s timed; marginal timed share {share:.2f}"
                f" (goal {GOAL}: {'met' if share >= GOAL else 'MISSED'})"
            )
            print(f"  {'phase (rank 0)':16} {'S s':>7} {'L s':>7} {'L - S':>7} {'share':>6}")
            for phase in [k for k in phases_l if k != "steps"] + ["steps"]:
                extra = phases_l[phase] - phases_s[phase]
                print(
                    f"  {phase:16} {phases_s[phase]:7.2f} {phases_l[phase]:7.2f}"
                    f" {extra:7.2f} {extra / added:6.1%}"
                )
            ratios = first_sample_ratios(Path(tmp) / f"{pair}-L")
            typical = statistics.median(ratios.values())
            print(f"  first sample / median in L (per row; median over rows {typical:.2f}):")
            for key, ratio in sorted(ratios.items(), key=lambda item: -item[1]):
                print(f"    {'/'.join(key[:2]):22} T={key[3]:5} {ratio:.2f}")
    print(f"marginal timed share: {', '.join(f'{s:.2f}' for s in shares)}")


if __name__ == "__main__":
    main()
