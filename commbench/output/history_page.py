"""`commbench history page`: a history as one self-contained HTML file (no script, style or
font fetched: it opens offline from a CI artifact).

Per aggregate (overall, each collective/variant), the level of every run the history
holds or held, as a ratio to the pinned level: the pinned runs, the window, the runs that
left it, the quarantined ones apart; the pinned level and the asked shift above it (the
pin test's line), the band a new run stays inside to pass the window's overall test on
the window's own spread, and the steps the trend test finds since the pin. Each row's own
series follows, folded (<details>). Every point is an SVG circle with a title (its run,
date, label, commit where known, torch and NCCL) and data attributes a reader or a test
can take the figures from. Drawn by hand in SVG: a chart is a few hundred elements, and
matplotlib's tick locators choose the ticks.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from commbench.analysis.gate.history import Entry, Ledger, read_ledger, when
from commbench.analysis.gate.judge import DETECT
from commbench.analysis.gate.model import OVERALL_LEVEL
from commbench.analysis.gate.series import Series, aggregates, levels, read_history_series
from commbench.analysis.gate.series import trend_steps as find_trend_steps
from commbench.analysis.stats import t_quantile
from commbench.point import row_label
from commbench.rundir.schema import KEY_COLUMNS

WIDTH, HEIGHT = 920, 250
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 28, 36
COLOURS = {"pinned": "#2a6f2a", "window": "#1f5fa8", "dropped": "#8aa6c8", "quarantined": "#c0392b"}
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 960px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
svg { display: block; background: #fff; border: 1px solid #ddd; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
details { margin: 6px 0; } summary { cursor: pointer; }
.legend span { margin-right: 14px; white-space: nowrap; }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 4px; }
"""


@dataclass(frozen=True)
class Chart:
    """One series to draw: each run's ratio to the reference level (NaN: not timed)."""

    title: str
    ratios: np.ndarray
    band: tuple[float, float] | None  # where one run passes the window's overall test
    detect: float  # the pin test's line above the pinned level
    steps: list[int]  # indices of the first run after each step


def _tooltip(entry: Entry, ratio: float, pinned: bool) -> str:
    parts = [f"{entry.name} ({'pinned, ' if pinned else ''}{entry.state})", entry.started]
    parts += [f"label {entry.label}"] if entry.label else []
    parts += [f"commit {entry.commit}"] if entry.commit else []
    parts += [f"torch {entry.torch or '-'}, NCCL {entry.nccl or '-'}", f"{ratio:.4f}x"]
    return "\n".join(parts)


def _svg(chart: Chart, series: Series) -> str:
    entries, ratios = series.entries, chart.ratios
    finite = ratios[np.isfinite(ratios)]
    if finite.size == 0:
        return "<p>no run timed it</p>"
    edges = [*finite, 1.0, chart.detect, *(chart.band or ())]
    low, high = min(edges), max(edges)
    pad = (high - low) * 0.08 or 0.05
    low, high = low - pad, high + pad
    n = len(entries)

    def x(i: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (i / max(n - 1, 1))

    def y(ratio: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - ratio) / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"'
        f' data-chart="{html.escape(chart.title)}">',
        f'<text x="{LEFT}" y="16">{html.escape(chart.title)}</text>',
    ]
    for tick in MaxNLocator(nbins=5).tick_values(low, high):
        if low <= tick <= high:
            parts.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"'
                ' stroke="#eee"/>'
                f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}x</text>'
            )
    times = [when(e.started) for e in entries]
    short = (times[-1] - times[0]).total_seconds() < 3 * 86400  # hours apart: say the hour
    for tick in MaxNLocator(nbins=6, integer=True).tick_values(0, n - 1):
        if 0 <= tick <= n - 1:
            at = times[int(tick)].strftime("%m-%d %H:%M" if short else "%Y-%m-%d")
            parts.append(
                f'<text x="{x(tick):.1f}" y="{HEIGHT - 12}" text-anchor="middle">{at}</text>'
            )
    if chart.band is not None:
        top, bottom = y(chart.band[1]), y(chart.band[0])
        start = next(i for i, e in enumerate(entries) if e.state == "window")
        parts.append(
            f'<rect x="{x(start):.1f}" y="{top:.1f}" width="{x(n - 1) - x(start) + 4:.1f}"'
            f' height="{bottom - top:.1f}" fill="#1f5fa8" fill-opacity="0.08">'
            "<title>where one run passes the window's overall test (its own spread)</title></rect>"
        )
    for ratio, colour, what in (
        (1.0, "#2a6f2a", "the pinned level"),
        (chart.detect, "#c0392b", "the asked shift above the pin"),
    ):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(ratio):.1f}" y2="{y(ratio):.1f}"'
            f' stroke="{colour}" stroke-dasharray="5,4"><title>{what}: {ratio:g}x</title></line>'
        )
    for step in chart.steps:
        middle = x(step - 0.5)
        parts.append(
            f'<line x1="{middle:.1f}" x2="{middle:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"'
            f' stroke="#e67e22" stroke-width="2" data-step="{html.escape(entries[step].name)}">'
            f"<title>a step: the level moves between {html.escape(entries[step - 1].name)}"
            f" and {html.escape(entries[step].name)}</title></line>"
        )
    pinned = set(series.pinned)
    for i, (entry, ratio) in enumerate(zip(entries, ratios, strict=True)):
        if not math.isfinite(ratio):
            continue
        state = "pinned" if entry.id in pinned else entry.state
        colour = COLOURS[state]
        fill = "#fff" if entry.state == "quarantined" else colour
        title = html.escape(_tooltip(entry, ratio, entry.id in pinned))
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(ratio):.1f}" r="3.5" fill="{fill}"'
            f' stroke="{colour}" data-run="{html.escape(entry.name)}" data-ratio="{ratio:.6g}"'
            f' data-state="{state}"><title>{title}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _reference(level: np.ndarray, series: Series) -> float:
    """The pinned runs' mean level; the series' median where nothing is pinned."""
    pinned = [i for i, e in enumerate(series.entries) if e.id in series.pinned]
    chosen = level[pinned] if pinned else level
    chosen = chosen[np.isfinite(chosen)]
    return float(chosen.mean() if pinned else np.median(chosen)) if chosen.size else 0.0


def _band(level: np.ndarray, series: Series, reference: float) -> tuple[float, float] | None:
    """The window's mean level +- its one-run prediction half-width at the overall test's
    level, from the window's own runs (no prior): as a ratio to the reference."""
    window = [i for i, e in enumerate(series.entries) if e.state == "window"]
    values = level[window]
    values = values[np.isfinite(values)]
    if values.size < 2:
        return None
    half = t_quantile(1 - OVERALL_LEVEL, values.size - 1) * values.std(ddof=1)
    half *= math.sqrt(1 + 1 / values.size)
    mean = values.mean() - reference
    return math.exp(mean - half), math.exp(mean + half)


def _steps(series: Series, steps: list[dict], group: tuple) -> list[int]:
    """Indices (in the whole series) of the runs after each of the group's steps."""
    names = {e.name: i for i, e in enumerate(series.entries)}
    return [
        names[s["after"]]
        for s in steps
        if (s["collective"], s["variant"]) == group and s["after"] in names
    ]


def _chart(title: str, level: np.ndarray, series: Series, detect: float, steps: list[int]) -> str:
    reference = _reference(level, series)
    chart = Chart(title, np.exp(level - reference), _band(level, series, reference), detect, steps)
    return _svg(chart, series)


def page_html(history: Path) -> str:
    series = read_history_series(history)
    ledger = read_ledger(history)
    backend = series.keys[0][KEY_COLUMNS.index("backend")] if series.keys else "nccl"
    detect = DETECT.get(backend, DETECT["nccl"])
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>commbench history: {html.escape(history.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>commbench history: {html.escape(str(history))}</h1>",
        _summary(series, ledger, detect),
    ]
    steps = find_trend_steps(series)
    for group, columns in aggregates(series.keys):
        name = "overall" if group == ("all", "all") else f"{group[0]}/{group[1]}"
        level = levels(series.logs, columns)
        out.append(f"<h2>{html.escape(name)}</h2>")
        out.append(_chart(name, level, series, detect, _steps(series, steps, group)))
        rows = [series.keys[c] for c in columns] if group != ("all", "all") else []
        if rows:
            out.append(f"<details><summary>{len(rows)} row(s) of {html.escape(name)}</summary>")
            for column in columns:
                label = row_label(dict(zip(KEY_COLUMNS, series.keys[column], strict=True)))
                out.append(_chart(label, levels(series.logs, [column]), series, detect, []))
            out.append("</details>")
    out.append("</body></html>")
    return "\n".join(out)


def _summary(series: Series, ledger: Ledger, detect: float) -> str:
    held = len(series.entries)
    window = sum(e.state == "window" for e in series.entries)
    quarantined = sum(e.state == "quarantined" for e in series.entries)
    span = ""
    if series.entries:
        first, last = when(series.entries[0].started), when(series.entries[-1].started)
        span = f" from {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    pin = "no pinned reference: ratios are to the series' median level"
    if ledger.pin is not None:
        p = ledger.pin
        pin = f"pinned by {html.escape(p.by)} at {html.escape(p.at)}: {html.escape(p.reason)}"
    legend = "".join(
        f'<span><i class="dot" style="background:{colour}"></i>{state}</span>'
        for state, colour in COLOURS.items()
    )
    return (
        f"<p>{held} run(s){span}; {window} in the window, {quarantined} quarantined. {pin}."
        f" Ratios to the pinned level; dashed: the pinned level and the asked shift above it"
        f" ({detect:g}x); shaded: where one run passes the window's overall test; orange:"
        " steps the trend test finds since the pin.</p>"
        f'<p class="legend">{legend}</p>'
    )


def write_page(history: Path, out: Path) -> None:
    out.write_text(page_html(history))
