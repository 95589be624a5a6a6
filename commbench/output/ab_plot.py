"""An A/B experiment's picture: a forest plot (each arm's ratio and interval per aggregate
and for the rows that differ most, the equivalence band shaded) beside the per-pair
ratios in launch order, where drift over the experiment shows. matplotlib's Figure,
never pyplot (as output/plot.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from commbench.analysis.ab import OVERALL

FOREST_ROWS = 8  # rows per arm beside the aggregates
DPI = 120


def _forest_entries(estimates: list[dict[str, Any]], arm: str) -> list[dict[str, Any]]:
    mine = [e for e in estimates if e["arm"] == arm]
    aggregates = sorted(
        (e for e in mine if e["kind"] != "row"), key=lambda e: (e["name"] != OVERALL, e["name"])
    )
    rows = sorted((e for e in mine if e["kind"] == "row"), key=lambda e: -abs(math.log(e["ratio"])))
    return aggregates + rows[:FOREST_ROWS]


def ab_figure(state: dict[str, Any]) -> Figure:
    design, result = state["design"], state["result"]
    arms = [a["name"] for a in design["arms"]]
    band = design["band"]
    entries = [(arm, e) for arm in arms[1:] for e in _forest_entries(result["estimates"], arm)]
    figure = Figure(figsize=(12, max(3.0, 0.32 * len(entries) + 1.5)), layout="constrained")
    forest, pairs = figure.subplots(1, 2, width_ratios=[3, 2])
    for y, (_, e) in enumerate(reversed(entries)):
        low, high = e["low"], e["high"]
        colour = "tab:red" if e["decision"] == "slower" else "tab:blue"
        if low is not None:
            forest.plot([low, high], [y, y], color=colour, linewidth=2)
        marker = "D" if e["kind"] != "row" else "o"
        forest.plot([e["ratio"]], [y], marker=marker, color=colour)
    forest.set_yticks(range(len(entries)))
    forest.set_yticklabels([f"{arm}: {e['name']}" for arm, e in reversed(entries)], fontsize=7)
    forest.axvspan(1 / (1 + band), 1 + band, color="0.9", zorder=0)
    forest.axvline(1.0, color="0.5", linewidth=0.8)
    forest.set_xscale("log")
    forest.set_xlabel(f"time ratio to {arms[0]} ({100 * result['confidence']:.2f}% intervals)")
    forest.set_title("Ratio per aggregate and for the rows that differ most")
    for arm in arms[1:]:
        for e in _forest_entries(result["estimates"], arm):
            if e["kind"] != "row":
                blocks = range(1, len(e["ratios"]) + 1)
                pairs.plot(blocks, e["ratios"], marker="o", label=f"{arm}: {e['name']}")
    pairs.axhspan(1 / (1 + band), 1 + band, color="0.9", zorder=0)
    pairs.set_yscale("log")
    pairs.xaxis.set_major_locator(MaxNLocator(integer=True))
    pairs.set_xlabel("pair, in launch order")
    pairs.set_ylabel("ratio within the pair")
    pairs.set_title("Per-pair ratios (drift shows as a trend)")
    pairs.legend(fontsize=7)
    return figure


def save_plot(state: dict[str, Any], path: Path) -> Path:
    ab_figure(state).savefig(path, dpi=DPI)
    return path
