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

from commbench.output.ab import aggregates, label

FOREST_ROWS = 8  # rows per arm beside the aggregates
DPI = 120
COLOURS = {"slower": "tab:red", "faster": "tab:green", "equivalent": "tab:blue"}


def _forest_entries(estimates: list[dict[str, Any]], arm: str) -> list[dict[str, Any]]:
    mine = [e for e in estimates if e["arm"] == arm and e["kind"] == "row"]
    rows = sorted(mine, key=lambda e: -abs(math.log(e["ratio"])))
    return aggregates(estimates, arm) + rows[:FOREST_ROWS]


def ab_figure(state: dict[str, Any]) -> Figure:
    design, result = state["design"], state["result"]
    arms = [a["name"] for a in design["arms"]]
    band = design["band"]
    entries = [(arm, e) for arm in arms[1:] for e in _forest_entries(result["estimates"], arm)]
    figure = Figure(figsize=(12, max(3.0, 0.32 * len(entries) + 1.5)), layout="constrained")
    forest, pairs = figure.subplots(1, 2, width_ratios=[3, 2])
    for y, (_, e) in enumerate(reversed(entries)):
        low, high = e["low"], e["high"]
        # only a decision is coloured: an aggregate's, or a row's adjusted over every row
        colour = COLOURS.get(e["decision"], "0.45")
        if low is not None:
            forest.plot([low, high], [y, y], color=colour, linewidth=2)
        marker = "D" if e["kind"] != "row" else "o"
        forest.plot([e["ratio"]], [y], marker=marker, color=colour)
    forest.set_yticks(range(len(entries)))
    forest.set_yticklabels([f"{arm}: {label(e)}" for arm, e in reversed(entries)], fontsize=7)
    forest.axvspan(1 / (1 + band), 1 + band, color="0.9", zorder=0)
    forest.axvline(1.0, color="0.5", linewidth=0.8)
    forest.set_xscale("log")
    forest.set_xlabel(
        f"time ratio to {arms[0]} (aggregates: at their look's share of alpha; rows: adjusted"
        " over every row); coloured: decided"
    )
    forest.set_title("Ratio per aggregate and for the rows that differ most")
    for arm in arms[1:]:
        for e in aggregates(result["estimates"], arm):
            if e["kind"] in ("overall", "collective"):
                blocks = range(1, len(e["ratios"]) + 1)
                pairs.plot(blocks, e["ratios"], marker="o", label=f"{arm}: {label(e)}")
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
