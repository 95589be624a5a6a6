"""How often does `commbench ab` cry wolf, and how fast does it find a real change?

Live experiments take minutes each, too few for error rates. So interleaved launches of
two arms that change nothing (A/A) are recorded (`record`: one `commbench ab` experiment
of a fixed number of blocks, every launch an ordinary run directory), at different times,
and the decision procedure (`commbench.analysis.ab.replay`, the command's own) is replayed
over draws from each recording (`analyse`):

- draws: blocks of two consecutive pairs (an ABBA unit, as the design pairs them),
  drawn WITH replacement, so the replays' spread is the recording's, not shrunk by drawing
  it out; the A/A pairs are the design's own (the reference's launch and the other arm's,
  within a block); the recording is centred first (row by row, the arm's launches scaled so
  that its own A/A ratio is exactly 1), so that a planted factor is the truth of the draws;
  `--swap`: each drawn unit's arms trade roles half the time (an A/A recording's arms are
  the same); `--apart`: single blocks drawn, not units, as if no two pairs moved together
  (a diagnosis of the intervals' error rates);
- planted: the arm's launch times scaled on chosen rows by an exact factor, every launch's
  recorded noise kept: a uniform 1.10x; one collective (all_reduce) 1.10x and 1.25x; the
  same collective at prefill sizes only (T > 512) 1.25x; and at the band's very edge, every
  row or the collective alone at 1.05x and 1/1.05x (the error rates there are the tests'
  nominal shares at most);
- per recording: the exit code rates, how often the change was found (exit 1) and named
  (the planted collective's contrast, or the prefill size class, decided slower) within
  10 pairs, the pairs it took, and A/A's equivalence reached for the contrasts; across
  recordings: the mean and the range.

`live` runs whole experiments of each kind with a real slowdown (tests/support/hooks's
sitecustomize on the arm's PYTHONPATH makes the arm's ranks wait F times their recent mean
longer in the planted calls, `@N` for tensors of N elements or more only), and prints their
exit codes and what they named; their launches read as recordings too. The kinds take
turns, and the same command run again continues a campaign under the same folder.

    python benchmarks/ab_power.py record results/ab-rec-1 --pairs 40 --seed 1
    python benchmarks/ab_power.py analyse results/ab-rec-1 results/ab-rec-2 results/ab-rec-3
    python benchmarks/ab_power.py analyse results/ab-rec-1 --pairs 30  # extended to 30 pairs
    python benchmarks/ab_power.py live results/ab-live --experiments 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from commbench.ab.experiment import VERDICT_CODES
from commbench.analysis.ab import FAMILY, Design, Pair, launch_times, replay
from commbench.analysis.ab.look import PREFILL, aggregates
from commbench.analysis.scenarios import DECODE_MAX_TOKENS
from commbench.rundir.reader import read_run

ROOT = Path(__file__).resolve().parent.parent
SLOWDOWN = ROOT / "tests" / "support" / "hooks"
SWEEP = ["--nproc", "4", "--config", str(ROOT / "configs" / "ci.toml")]
MAX_PAIRS, MIN_PAIRS, BAND = 10, 4, 0.05
COLLECTIVE = "all_reduce"  # the one collective planted
EVERY = "all_gather:all_gather_into_tensor:all_gather_single:reduce_scatter:" \
    "reduce_scatter_tensor:reduce_scatter_single:all_reduce"  # fmt: skip
PREFILL_ELEMENTS = 524288  # ci.toml's T=1024 x H=1024 and up; T=64 is 65536

# name -> (rows planted: None every row, else (collective, prefill only), the factor)
PLANTED = {
    "A/A": (None, 1.0),
    "uniform 1.10x": (None, 1.10),
    f"{COLLECTIVE} 1.10x": ((COLLECTIVE, False), 1.10),
    f"{COLLECTIVE} 1.25x": ((COLLECTIVE, False), 1.25),
    f"{COLLECTIVE} prefill 1.25x": ((COLLECTIVE, True), 1.25),
    "edge: uniform 1.05x": (None, 1 + BAND),
    "edge: uniform 1/1.05x": (None, 1 / (1 + BAND)),
    f"edge: {COLLECTIVE} 1.05x": ((COLLECTIVE, False), 1 + BAND),
    f"edge: {COLLECTIVE} 1/1.05x": ((COLLECTIVE, False), 1 / (1 + BAND)),
}
# live kinds: the arm's slowdown (the fraction F per call, as the hook takes it)
# (F 0.125 measured about 1.10x, 0.31 about 1.22x and 0.35 about 1.30x of all_reduce on
# configs/ci.toml, 4 gloo ranks, a shared 2-core x86_64 VM, December 2026: the ratio a
# fraction makes moves with the machine, so each experiment's is measured, not assumed)
LIVE = {
    "coll125": f"{COLLECTIVE}=0.33",
    "coll110": f"{COLLECTIVE}=0.125",
    "prefill125": f"{COLLECTIVE}=0.33@{PREFILL_ELEMENTS}",
    "aa": None,
    "uniform110": f"{EVERY}=0.125",
}


def ab(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "commbench", "ab", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def arm(name: str, slowdown: str | None) -> str:
    if slowdown is None:
        return f"{name}:COMMBENCH_AB_NOTHING=1"
    path = f"{SLOWDOWN}{os.pathsep}{ROOT}"
    return f"{name}:PYTHONPATH={path},COMMBENCH_TEST_SLOWDOWN={slowdown}"


def record(out: Path, pairs: int, sweep: list[str], seed: int) -> None:
    """One A/A experiment of exactly `pairs` blocks: a band nothing decides in."""
    args = ["--arm", "base", "--arm", arm("same", None), *sweep, "--out", str(out)]
    args += ["--seed", str(seed), "--min-pairs", str(pairs), "--max-pairs", str(pairs)]
    done = ab([*args, "--band", "1e-9"])
    print(done.stdout[-1500:], done.stderr[-1500:], f"exit {done.returncode}", sep="\n")


def load(root: Path) -> tuple[dict[int, pd.Series], list[tuple[int, int]], float]:
    """A recording's launch times, its blocks as (reference, arm) launch indices in launch
    order, and the mean seconds a launch took."""
    state = json.loads((root / "experiment.json").read_text())
    reference = state["design"]["arms"][0]["name"]
    times, blocks, seconds = {}, {}, []
    for launch in state["launches"]:
        if launch["status"] == "ok" and launch["block"] >= 0:
            times[launch["index"]] = launch_times(read_run(root / launch["dir"]).results)
            role = 0 if launch["arm"] == reference else 1
            blocks.setdefault(launch["block"], [None, None])[role] = launch["index"]
            seconds.append(launch["seconds"])
    complete = [tuple(b) for _, b in sorted(blocks.items()) if None not in b]
    return times, complete, float(np.mean(seconds)) if seconds else math.nan


def centred(times: dict[int, pd.Series], blocks: list[tuple[int, int]]) -> dict[int, pd.Series]:
    """The arm's launches scaled, row by row, so that the recording's geometric-mean ratio
    is exactly 1: the population the draws come from then holds no difference, and a
    planted factor is the truth. A recording's own A/A ratio is chance (or the machine),
    and left in it would count as a planted change."""
    ratios = pd.concat([np.log(times[arm] / times[ref]) for ref, arm in blocks], axis=1)
    shift = np.exp(ratios.mean(axis=1))
    arms = {arm for _, arm in blocks}
    return {index: t / shift if index in arms else t for index, t in times.items()}


def unit_correlations(
    times: dict[int, pd.Series], blocks: list[tuple[int, int]]
) -> list[tuple[str, str, float]]:
    """How an ABBA unit's two pairs move together, per aggregate: the correlation of the
    first pair's log ratio with the second's, about the recording's mean. The intervals
    take every pair as independent; positive values make them too short."""
    common = sorted(set.intersection(*(set(t.index) for t in times.values())))
    logs = np.array([np.log(times[a][common] / times[r][common]).to_numpy() for r, a in blocks])
    found = []
    for kind, name, per_pair in aggregates(logs, common):
        x = per_pair[: len(per_pair) // 2 * 2] - per_pair.mean()
        first, second = x[0::2], x[1::2]
        found.append((kind, name, float((first * second).mean() / (x**2).mean())))
    return found


def planted(times: pd.Series, rows: tuple[str, bool] | None, factor: float) -> pd.Series:
    if rows is None:
        return times * factor
    collective = times.index.get_level_values("collective") == rows[0]
    if rows[1]:
        collective &= times.index.get_level_values("tokens") > DECODE_MAX_TOKENS
    return times.where(~collective, times * factor)


def draw(
    blocks: list[tuple[int, int]],
    rng: np.random.Generator,
    pairs: int,
    swap: bool = False,
    apart: bool = False,
) -> list[tuple[int, int]]:
    """`pairs` blocks: units of two consecutive recorded blocks (ABBA), with replacement.

    With `swap`, each drawn unit's two arms trade roles half the time: in an A/A recording
    they are the same, so which one was called the reference is chance, and a recording
    whose slow launches happened to fall on one side is not replayed as a skew that
    side always has. With `apart`, single blocks are drawn instead of units: pairs
    independent of each other, as the Student-t intervals take them (a diagnosis: how
    much of an error rate comes from the two pairs of a unit moving together)."""
    units = [blocks[i : i + 2] for i in range(0, len(blocks) - 1, 2)]
    if apart:
        units = [[block] for block in blocks]
    chosen = rng.integers(0, len(units), pairs // len(units[0]))
    flips = rng.integers(0, 2, len(chosen)) if swap else np.zeros(len(chosen), dtype=int)
    return [b[::-1] if flip else b for u, flip in zip(chosen, flips, strict=True) for b in units[u]]


def one(
    times: dict, drawn: list[tuple[int, int]], rows: tuple[str, bool] | None, factor: float
) -> tuple[object, str]:
    """The procedure over one draw: the arm's launches planted (fresh indices per pair)."""
    replayed, blocks = {}, []
    for number, (reference, launch) in enumerate(drawn):
        replayed[2 * number] = times[reference]
        replayed[2 * number + 1] = planted(times[launch], rows, factor)
        blocks.append([Pair("b", number, 2 * number, 2 * number + 1)])
    return replay(replayed, blocks, Design(["a", "b"], BAND, MIN_PAIRS, len(drawn)))


def named(last: object, rows: tuple[str, bool] | None, decision: str) -> bool:
    """Whether the change was named where it is, decided `decision`: for a uniform change
    the overall ratio; for one collective its contrast; for its prefill sizes only, its
    prefill-sized rows against its decode-sized ones, or the prefill size class."""
    if rows is None:
        places = {("overall", "overall")}
    elif rows[1]:
        places = {("collective size", rows[0]), ("size", PREFILL)}
    else:
        places = {("contrast", rows[0])}
    return any((e.kind, e.name) in places and e.decision == decision
               for e in last.estimates)  # fmt: skip


def wrong_decision(last: object, name: str, rows: tuple[str, bool] | None, factor: float) -> bool:
    """At the band's edge: the planted aggregate decided beyond the band on the planted
    side (the truth is at the edge, not beyond it). Else: any aggregate decided against
    the planted direction (for A/A, any decision other than equivalent). A planted change
    truly moves the other collectives' and size classes' contrasts the other way (the
    launch's mean moved), so then only the absolute family can be wrong."""
    if name.startswith("edge"):
        return named(last, rows, "slower" if factor > 1 else "faster")
    if factor == 1:
        return any(e.decision in ("slower", "faster") for e in last.deciding())
    against = "faster" if factor > 1 else "slower"
    absolute = [e for e in last.deciding() if e.kind in ("overall", "collective")]
    return any(e.decision == against for e in absolute)


def analyse_one(
    root: Path, draws: int, seed: int, budget: int, swap: bool, apart: bool
) -> dict[str, dict[str, float]]:
    times, blocks, seconds = load(root)
    own = np.exp(np.mean([np.log(times[arm] / times[ref]).mean() for ref, arm in blocks]))
    print(
        f"{root}: {len(blocks)} blocks, {seconds:.1f} s a launch, its own A/A ratio "
        f"{own:.3f}x (centred away)"
    )
    print("  a unit's two pairs correlate: " + ", ".join(
        f"{kind} {name} {rho:+.2f}" for kind, name, rho in unit_correlations(times, blocks)
    ))  # fmt: skip
    times = centred(times, blocks)
    found: dict[str, dict[str, float]] = {}
    for name, (rows, factor) in PLANTED.items():
        rng = np.random.default_rng(seed)
        codes, pairs, hits, equivalent, wrong = Counter(), [], 0, 0, 0
        for _ in range(draws):
            last, said = one(times, draw(blocks, rng, budget, swap, apart), rows, factor)
            codes[said] += 1
            if said == "regression":
                pairs.append(last.pairs)
            hits += said == "regression" and named(last, rows, "slower")
            contrasts = [e for e in last.estimates if FAMILY.get(e.kind) == "contrast"]
            equivalent += bool(contrasts) and all(e.decision == "equivalent" for e in contrasts)
            wrong += wrong_decision(last, name, rows, factor)
        found[name] = {
            "exit 1": codes["regression"] / draws,
            "exit 0": codes["decided"] / draws,
            "exit 4": codes["undecided"] / draws,
            "named": hits / draws,
            "pairs": float(np.median(pairs)) if pairs else math.nan,
            "contrasts equivalent": equivalent / draws,
            "wrong": wrong / draws,
        }
        print(f"  {name:28} " + ", ".join(f"{k} {v:.3g}" for k, v in found[name].items()),
              flush=True)  # fmt: skip
    return found


def analyse(roots: list[Path], draws: int, seed: int, budget: int, swap: bool, apart: bool) -> None:
    every = [analyse_one(root, draws, seed, budget, swap, apart) for root in roots]
    print(f"across {len(roots)} recordings: mean [min, max]")
    for name in PLANTED:
        cells = []
        for figure in ("exit 1", "named", "pairs", "contrasts equivalent", "wrong"):
            values = [found[name][figure] for found in every]
            cells.append(f"{figure} {np.nanmean(values):.3g} [{min(values):.3g},"
                         f" {max(values):.3g}]")  # fmt: skip
        print(f"  {name:28} " + ", ".join(cells))


def live(root: Path, experiments: int, sweep: list[str], kinds: list[str],
         lock: Callable[[], object]) -> None:  # fmt: skip
    """Whole experiments of each kind, each alone on the machine (under `lock`).

    The kinds take turns (each kind's first experiment, then each one's second), so a
    campaign cut short still covers every kind; an experiment already finished under
    `root` is reported, not run again, so the same command continues the campaign.
    """
    for i in range(experiments):
        for kind in kinds:
            out = root / f"{kind}-{i}"
            state = out / "experiment.json"
            if not state.exists():
                args = ["--arm", "base", "--arm", arm(kind, LIVE[kind]), *sweep, "--out", str(out)]
                args += ["--seed", str(i), "--min-pairs", str(MIN_PAIRS)]
                with lock():
                    ab([*args, "--max-pairs", str(MAX_PAIRS), "--band", str(BAND)])
            elif json.loads(state.read_text())["status"] in ("sampling", "interrupted"):
                with lock():
                    ab(["--resume", str(out)])
            finished = json.loads(state.read_text())
            where = [
                f"{e['kind']} {e['name']} {e['ratio']:.3f}x {e['decision']}"
                for e in finished["result"]["estimates"]
                if e["kind"] != "row" and e["decision"] != "undecided"
            ]
            code = int(VERDICT_CODES[finished["status"]])
            print(f"  live {kind} {i}: exit {code} at {finished['result']['pairs']} pairs:"
                  f" {'; '.join(where) or '-'}", flush=True)  # fmt: skip


def locked(path: Path | None) -> Callable[[], object]:
    """A context that holds `path` (flock) around each experiment: nothing else measured
    shares the machine with it; no lock where none is given."""
    import contextlib
    import fcntl

    @contextlib.contextmanager
    def hold():
        if path is None:
            yield
            return
        with path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    return hold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="record interleaved A/A launches")
    rec.add_argument("root", type=Path)
    rec.add_argument("--pairs", type=int, default=40)
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--sweep", default=" ".join(SWEEP), help="the sweep flags of every launch")
    judged = commands.add_parser("analyse", help="replay the procedure over recordings")
    judged.add_argument("roots", type=Path, nargs="+", help="recordings, each on its own")
    judged.add_argument("--draws", type=int, default=1000)
    judged.add_argument("--seed", type=int, default=0)
    judged.add_argument(
        "--pairs", type=int, default=MAX_PAIRS, help="the budget (--max-pairs) of each replay"
    )
    judged.add_argument(
        "--swap", action="store_true", help="each drawn unit's arms trade roles half the time"
    )
    judged.add_argument(
        "--apart", action="store_true", help="draw single blocks, not ABBA units (a diagnosis)"
    )
    run = commands.add_parser("live", help="whole experiments of each kind")
    run.add_argument("root", type=Path)
    run.add_argument("--experiments", type=int, default=5)
    run.add_argument("--sweep", default=" ".join(SWEEP))
    run.add_argument("--kinds", default=",".join(LIVE), help=f"of {', '.join(LIVE)}")
    run.add_argument("--lock", type=Path, help="flock this file around each experiment")
    args = parser.parse_args()
    if args.command == "record":
        record(args.root, args.pairs, args.sweep.split(), args.seed)
    elif args.command == "analyse":
        analyse(args.roots, args.draws, args.seed, args.pairs, args.swap, args.apart)
    else:
        kinds = args.kinds.split(",")
        live(args.root, args.experiments, args.sweep.split(), kinds, locked(args.lock))


if __name__ == "__main__":
    main()
