"""How long does `commbench gate` take on a 1,000-row result? (goal: under 1 second)

Writes two synthetic run directories of ROWS rows (12 samples each, 5 rounds) in the
real format, then times `run_gate` in-process (the work) and the whole CLI in a
subprocess (the work plus Python, pandas and scipy start-up), best of REPEAT.

    python benchmarks/gate_speed.py [--rows 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.runfixtures import key, samples_around, write_run

from commbench.analysis.gate.judge import run_gate


def synthetic_rows(count: int, seed: int) -> list:
    keys = [
        key(collective, variant, tokens, tp, dtype)
        for collective, variant in (
            ("all_gather", "list"),
            ("all_gather", "tensor"),
            ("reduce_scatter", "list"),
            ("reduce_scatter", "tensor"),
        )
        for tp in (2, 4)
        for dtype in ("bfloat16", "float16", "float32")
        for tokens in range(1, count)
    ][:count]
    return [(k, samples_around(100 + i % 50, 12, 0.05, seed + i)) for i, k in enumerate(keys)]


def best_of(repeat: int, action) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="gate-speed-"))
    base = write_run(scratch / "base", synthetic_rows(args.rows, 0), rounds=5)
    current = write_run(scratch / "current", synthetic_rows(args.rows, 10_000), rounds=5)
    run_gate([base], current)  # warm the imports
    work = best_of(args.repeat, lambda: run_gate([base], current))
    command = [sys.executable, "-m", "commbench", "gate", str(base), str(current)]
    cli = best_of(args.repeat, lambda: subprocess.run(command, capture_output=True))
    imports = best_of(
        args.repeat,
        lambda: subprocess.run(
            [sys.executable, "-c", "import pandas, scipy.stats"], capture_output=True
        ),
    )
    print(
        f"{args.rows} rows: run_gate {work:.2f} s; CLI {cli:.2f} s "
        f"(of which importing pandas + scipy.stats alone: {imports:.2f} s); best of {args.repeat}"
    )


if __name__ == "__main__":
    main()
