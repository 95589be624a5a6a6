"""What confirming an alarm costs and keeps: the overall test's model, simulated.

`make gate` reruns the sweep once on exit 1 and judges the rerun on its own: the alarm is
confirmed when it repeats. Gating both runs together keeps more power under normal drift,
but the first run is in that mean, so one far-off run carries the second look too. Under
the model of docs/gate.md (every run's drift normal with one sd, a history of B runs
giving the only spread, no prior), this draws histories and two current runs and counts,
at the overall test's level: clean runs that alarm once, that the rerun alone keeps (the
confirmation), and that both runs gated together would keep; and the same for a shift of
3 between-run sds (power).
`--rerun-correlation R` draws the rerun's drift correlated R with the first run's: a rerun
made at once, on the same node, shares the slow part of the alarm's drift.

    python benchmarks/gate_confirm.py
    python benchmarks/gate_confirm.py --rerun-correlation 0.5
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import t

from commbench.analysis.gate.model import OVERALL_LEVEL


def simulate(
    level: float, baselines: int, shift: float, draws: int, seed: int, rho: float = 0.0
) -> dict:
    rng = np.random.default_rng(seed)
    history = rng.standard_normal((draws, baselines))
    own, fresh = rng.standard_normal((2, draws))
    first, rerun = own + shift, rho * own + np.sqrt(1 - rho**2) * fresh + shift
    mean, sd = history.mean(axis=1), history.std(axis=1, ddof=1)
    critical = t.ppf(1 - level, baselines - 1) * sd
    alarm = first - mean > critical * np.sqrt(1 + 1 / baselines)
    together = (first + rerun) / 2 - mean > critical * np.sqrt(1 / 2 + 1 / baselines)
    alone = rerun - mean > critical * np.sqrt(1 + 1 / baselines)
    return {
        "first look": alarm.mean(),
        "confirmed (rerun alone)": (alarm & alone).mean(),
        "together": (alarm & together).mean(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=float, default=OVERALL_LEVEL)
    parser.add_argument("--draws", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rerun-correlation", type=float, default=0.0)
    args = parser.parse_args()
    rho = args.rerun_correlation
    for baselines in (5, 10):
        for shift in (0.0, 3.0):
            rates = simulate(args.level, baselines, shift, args.draws, args.seed, rho)
            said = ", ".join(f"{name} {rate:.2%}" for name, rate in rates.items())
            print(
                f"level {args.level:g}, {baselines} baseline runs, shift {shift:g} sd,"
                f" rerun correlated {rho:g}: {said}"
            )


if __name__ == "__main__":
    main()
