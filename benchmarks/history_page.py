"""How long the history page takes to draw and to load, for a history of many runs.

A history of N runs is grown from one real run directory (its results scaled by a drift
of `--drift` a run, a 5% step at two thirds), the first five pinned; then
`commbench history page` writes the page (timed), and a headless Chromium loads it and
dumps the rendered DOM, beside the same Chromium loading an empty page: the difference is
the page's own load and render time. Medians of `--repeats` alternating loads.

    python benchmarks/history_page.py RUN --runs 200
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from commbench.analysis.gate.history import pin, record
from commbench.output.history_page import write_page
from commbench.rundir.schema import META_JSON, RESULTS_CSV

CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--dump-dom"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def grown(source: Path, into: Path, runs: int, drift: float, seed: int) -> Path:
    """A history of `runs` runs made from `source`, one an hour."""
    rng = np.random.default_rng(seed)
    meta = json.loads((source / META_JSON).read_text())
    results = pd.read_csv(source / RESULTS_CSV)
    start = datetime.fromisoformat(meta["started"])
    history = into / "history"
    for i in range(runs):
        run = into / "runs" / f"run-{i}"
        shutil.copytree(source, run, ignore=shutil.ignore_patterns("rank_samples.csv"))
        step = 1.05 if i >= 2 * runs // 3 else 1.0
        scaled = results.assign(time_us=results["time_us"] * step * np.exp(rng.normal(0, drift)))
        scaled.to_csv(run / RESULTS_CSV, index=False)
        when = (start + timedelta(hours=i)).isoformat()
        (run / META_JSON).write_text(json.dumps({**meta, "started": when, "label": f"run-{i}"}))
        record(history, run)
        if i == 4:
            pin(history, [into / "runs" / f"run-{k}" for k in range(5)], "the seed", "benchmark")
    return history


def load_s(browser: str, page: Path) -> float:
    began = time.perf_counter()
    subprocess.run([browser, *CHROMIUM, page.as_uri()], capture_output=True, check=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a real run directory to grow the history from")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--drift", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    browser = next(path for name in BROWSERS if (path := shutil.which(name)))
    with tempfile.TemporaryDirectory() as work:
        history = grown(args.run, Path(work), args.runs, args.drift, args.seed)
        page, empty = Path(work) / "page.html", Path(work) / "empty.html"
        began = time.perf_counter()
        write_page(history, page)
        written = time.perf_counter() - began
        empty.write_text("<!doctype html><title>empty</title>")
        loads: dict[Path, list[float]] = {page: [], empty: []}
        for _ in range(args.repeats):
            for target in (empty, page):
                loads[target].append(load_s(browser, target))
        own, blank = statistics.median(loads[page]), statistics.median(loads[empty])
        print(
            f"{args.runs} runs ({len(pd.read_csv(args.run / RESULTS_CSV))} rows each):"
            f" page written in {written:.2f} s, {page.stat().st_size / 1e6:.2f} MB;"
            f" Chromium loads it in {own:.2f} s (median of {args.repeats}), an empty page in"
            f" {blank:.2f} s: the page's own load and render {own - blank:.2f} s"
        )


if __name__ == "__main__":
    main()
