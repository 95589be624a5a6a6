"""How long do the commands that only read results take to start?

Each command runs in a fresh interpreter, best of REPEAT wall-clock times, beside the
reference the goal is stated in: `python -c "import pandas"`. `--help`, `presets` and
`report` should stay within 1.5x of it; `gate`, `compare` and `plot` may add the
statistics and plotting libraries they need (scipy.stats about 1 s on a 2-core x86_64 VM,
matplotlib about 0.5 s). `import torch` is shown for scale: none of these commands may pay it.

    python benchmarks/startup.py [--repeat 5] [--runs RUN_A RUN_B]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baselines" / "ci-gloo-4"
GOAL = 1.5  # x import pandas, for the commands that need no statistics or plotting


def best_of(command: list[str], repeat: int) -> float:
    """The fastest of `repeat` runs: start-up is a floor, the rest is noise."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--runs", nargs=2, type=Path, default=[BASELINE / "run-1", BASELINE / "run-2"]
    )
    args = parser.parse_args()
    a, b = (str(run) for run in args.runs)
    python = [sys.executable]
    cli = [*python, "-m", "commbench"]
    with tempfile.TemporaryDirectory() as plots:
        commands = {
            "import pandas": ([*python, "-c", "import pandas"], None),
            "import torch": ([*python, "-c", "import torch"], None),
            "commbench --help": ([*cli, "--help"], GOAL),
            "commbench presets": ([*cli, "presets"], GOAL),
            "commbench report": ([*cli, "report", a], GOAL),
            "commbench compare": ([*cli, "compare", a, b], None),
            "commbench gate": ([*cli, "gate", a, b], None),
            "commbench plot": ([*cli, "plot", a, "--out", plots], None),
        }
        times = {name: best_of(command, args.repeat) for name, (command, _) in commands.items()}
    reference = times["import pandas"]
    print(f"best of {args.repeat}, {sys.executable}")
    print(f"{'command':20} {'seconds':>8} {'x pandas':>9}  goal")
    for name, (_, goal) in commands.items():
        verdict = "" if goal is None else ("met" if times[name] <= goal * reference else "MISSED")
        goal_text = f"<= {goal}x {verdict}" if goal else ""
        print(f"{name:20} {times[name]:8.2f} {times[name] / reference:9.2f}  {goal_text}")


if __name__ == "__main__":
    main()
