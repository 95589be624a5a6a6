"""What share of the time a point adds to a sweep is spent inside timed samples? (issue 8)

Runs a sweep twice on the same world: as configured, and with float16 beside bfloat16,
which doubles the points with points of exactly the same sizes and leaves start-up
(interpreters, imports, rendezvous, process groups) unchanged. What the second run takes
beyond the first is what those points cost; the share of it spent inside timed samples
(meta.json's `phases`, rank 0) is the efficiency. Goal: at least 60% on the CPU sweeps.
The per-phase breakdown of the difference shows where the rest goes.

    python benchmarks/efficiency.py [--nproc 4] [--repeat 2] [-- extra sweep flags]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 0.60


def sweep(nproc: int, out: Path, dtypes: str, extra: list[str]) -> tuple[float, dict]:
    """Wall seconds of one whole `commbench sweep`, and its rank-0 phases."""
    command = [sys.executable, "-m", "commbench", "sweep", "--nproc", str(nproc)]
    command += ["--dtypes", dtypes, "--out", str(out), *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - started
    return wall, json.loads((out / "meta.json").read_text())["phases"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="pairs of runs, alternating")
    parser.add_argument("extra", nargs="*", help="flags for both sweeps (after --)")
    args = parser.parse_args()
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeat):
            runs = {}
            order = ("bfloat16", "bfloat16,float16")
            for dtypes in order if repeat % 2 == 0 else order[::-1]:  # alternate who goes first
                out = Path(tmp) / f"{repeat}-{dtypes}"
                runs[dtypes] = sweep(args.nproc, out, dtypes, args.extra)
            pairs.append((runs["bfloat16"], runs["bfloat16,float16"]))
    for number, ((wall_a, phases_a), (wall_b, phases_b)) in enumerate(pairs, start=1):
        added = wall_b - wall_a
        share = {name: (phases_b[name] - phases_a[name]) / added for name in phases_a}
        print(
            f"pair {number}: {wall_a:.1f} s and {wall_b:.1f} s; the added points took"
            f" {added:.1f} s, {share['samples']:.0%} of it inside timed samples"
            f" (goal {GOAL:.0%}: {'met' if share['samples'] >= GOAL else 'MISSED'})"
        )
        print(
            "  per phase: "
            + ", ".join(f"{name} {value:.1%}" for name, value in share.items() if name != "steps")
        )
        print(
            f"  outside the points (start-up, report): {wall_b - phases_b['steps']:.1f} s"
            f" and {wall_a - phases_a['steps']:.1f} s"
        )


if __name__ == "__main__":
    main()
