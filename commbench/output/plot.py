"""Pictures of runs: bandwidth and time against size, and where the tensor form wins.

Reads run directories only (pandas, matplotlib): it never imports torch, so `commbench plot`
works on any machine. Figures are plain `matplotlib.figure.Figure` objects saved through the
Agg or SVG canvas, never pyplot: no global figure registry to leak into or to close, and no
display needed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from commbench.analysis.scenarios import ROUTING, routing_label
from commbench.analysis.summary import side_by_side
from commbench.errors import UsageError
from commbench.point import width_label
from commbench.rundir.reader import Run, measured, read_run
from commbench.rundir.schema import PLOT_PREFIX
from commbench.units import scale_bytes

FORMATS = ("png", "svg")
LINE_GROUP = ["collective", "tp", "dp", "dtype", "hidden", "vocab", *ROUTING]
HEAT_GROUP = ["collective", "tp", "dp", "dtype", *ROUTING]
METRICS = {  # name in the file: (column, what, unit)
    "busbw": ("busbw_gbps", "bus bandwidth", "GB/s"),
    "time": ("time_us", "time per operation", "us"),
}
VARIANT_COLOURS = {"list": "tab:orange", "tensor": "tab:blue", "padded": "tab:green"}
UNSTABLE_GREY = "#d0d0d0"  # a heatmap cell whose point carries no verdict
RUN_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v")]
DPI = 120


def plot_runs(runs: list[Path], out: Path | None, format: str) -> list[Path]:
    """Write every figure of RUNS into OUT (default: the first run's directory).

    Returns the files written, in a stable order.
    """
    if format not in FORMATS:
        raise UsageError(f"format: must be png or svg (got {format!r})")
    if not runs:
        raise UsageError("runs: at least one run directory is needed")
    loaded = [read_run(Path(path)) for path in runs]
    target = _output_dir(out if out is not None else loaded[0].path)
    return [_save(figure, target / f"{name}.{format}") for name, figure in figures(loaded)]


def figures(runs: Sequence[Run]) -> Iterator[tuple[str, Figure]]:
    """(file stem, figure): lines per collective, split, dtype and hidden; then heatmaps."""
    labels = _labels(runs)
    rows = pd.concat(
        [
            measured(run.results).assign(label=label)
            for run, label in zip(runs, labels, strict=True)
        ],
        ignore_index=True,
    )
    for (collective, tp, dp, dtype, hidden, vocab, *_), group in rows.groupby(
        LINE_GROUP, sort=True
    ):
        width = f"V{vocab}" if vocab else f"H{hidden}"
        stem = _name(PLOT_PREFIX, collective, f"tp{tp}", f"dp{dp}", dtype, width, *_routing(group))
        for metric in METRICS:
            yield f"{stem}-{metric}", line_figure(group, metric, labels)
    for run, label in zip(runs, labels, strict=True):
        comparison = side_by_side(run.results)
        for (collective, tp, dp, dtype, *_), group in comparison.groupby(HEAT_GROUP, sort=True):
            parts = [PLOT_PREFIX, collective, f"tp{tp}", f"dp{dp}", dtype, *_routing(group)]
            parts.append("speedup")
            title = f"{collective}  tp={tp} dp={dp}  {dtype}{routing_label(group.iloc[0])}"
            if len(runs) > 1:
                parts.append(label)
                title += f"  ({label})"
            yield _name(*parts), speedup_figure(group, title)


def _routing(rows: pd.DataFrame) -> list[str]:
    """File name parts of a routed group (`E256`, `k8`, `s1.2`); none for the others."""
    first = rows.iloc[0]
    if not first["experts"]:
        return []
    return [f"E{first['experts']}", f"k{first['topk']}", f"s{first['skew']:g}"]


def _labels(runs: Sequence[Run]) -> list[str]:
    """Each run's label, or every run's path where two share a label: no legend is ambiguous."""
    labels = [run.label for run in runs]
    return labels if len(set(labels)) == len(labels) else [str(run.path) for run in runs]


def _name(*parts: object) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(part)).strip("_.") for part in parts)


def line_figure(rows: pd.DataFrame, metric: str, labels: Sequence[str]) -> Figure:
    """One collective, split, dtype and hidden size: METRIC against bytes, log-log.

    One line per variant and (when several runs are plotted) per run label: the colour is the
    variant, the line style and marker the run. Every point carries its interval as an
    error bar: the 95% CI of its median (p10..p90 where there were too few samples for
    one), for a bandwidth the same interval turned into bandwidths.
    """
    column, what, unit = METRICS[metric]
    several = len(labels) > 1
    first = rows.iloc[0]
    figure = Figure(figsize=(7.5, 4.8), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    for (label, variant), line in rows.groupby(["label", "variant"], sort=True):
        line = line.sort_values("bytes")
        style, marker = RUN_STYLES[list(labels).index(label) % len(RUN_STYLES)]
        colour = VARIANT_COLOURS.get(variant)
        name = f"{label}: {variant}" if several else variant
        ax.plot(
            line["bytes"], line[column], linestyle=style, marker=marker, color=colour, label=name
        )
        low, high = _interval(line, column)
        errors = [line[column] - low, high - line[column]]
        ax.errorbar(line["bytes"], line[column], yerr=errors, fmt="none", ecolor=colour,
                    elinewidth=1, capsize=3, alpha=0.7)  # fmt: skip
    _log_axes(ax)
    ax.set_title(
        f"{first['collective']}  tp={first['tp']} dp={first['dp']}  {first['dtype']}"
        f"  {width_label(first)}: {what}"
    )
    ax.set_xlabel("message size (bytes, log scale)")
    ax.set_ylabel(f"{what} ({unit}, log scale)")
    ax.legend(title="run: variant" if several else "variant", fontsize="small")
    return figure


def _interval(line: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """Each point's interval in `column`'s terms: the median's, or for a bandwidth the
    bandwidths at the interval's ends (a longer time is a lower bandwidth)."""
    low = line["ci_low_us"].fillna(line["time_us_p10"])
    high = line["ci_high_us"].fillna(line["time_us_p90"])
    if column == "time_us":
        return low, high
    return line[column] * line["time_us"] / high, line[column] * line["time_us"] / low


def _plain(value: float, _position: object = None) -> str:
    """A tick label as a plain number, three significant digits at most, never 6e-01."""
    return np.format_float_positional(value, precision=3, unique=True, fractional=False, trim="-")


def _log_axes(ax: Axes) -> None:
    """Powers of two in B/KiB/MiB on x (sizes are), plain numbers on y, major and minor
    ticks alike (the minor ones at 2 and 5 of each decade)."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2, numticks=9))
    ax.xaxis.set_major_formatter(FuncFormatter(_bytes_tick))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_plain))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(FuncFormatter(_plain))
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.12)


def _bytes_tick(value: float, _position: object = None) -> str:
    scaled, unit = scale_bytes(value)
    return f"{scaled:g} {unit}"


def speedup_figure(rows: pd.DataFrame, title: str) -> Figure:
    """List time / tensor time over tokens x hidden, from `report.side_by_side` rows.

    The colour scale is logarithmic and symmetric about 1.0, so 2x and 0.5x are equally
    strong (blue: the tensor form is faster, red: slower). Bold values differ beyond noise
    (the two confidence intervals do not overlap, the report's win/loss). An unstable
    point (its samples scatter too much for a verdict) is grey whatever its ratio: a
    colour would claim what its interval cannot.
    """
    logits = bool(rows["vocab"].any())  # logits rows are as wide as the vocabulary
    table = rows.set_index(["tokens", "vocab" if logits else "hidden"]).sort_index()
    speedup = table["speedup"].unstack()
    verdict = table["verdict"].unstack()
    values = speedup.to_numpy(dtype=float)
    values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    unstable = verdict.to_numpy() == "unstable"
    coloured = np.where(unstable, np.nan, values)
    shown = coloured[~np.isnan(coloured)]
    reach = max(float(np.abs(np.log(shown)).max(initial=0)), math.log(1.1))
    norm = LogNorm(vmin=math.exp(-reach), vmax=math.exp(reach))
    height, width = values.shape
    figure = Figure(
        figsize=(max(6.5, 3.2 + 1.1 * width), max(4.0, 2.0 + 0.5 * height)),
        dpi=DPI,
        layout="constrained",
    )
    ax = figure.add_subplot()
    cmap = colormaps["RdBu"].with_extremes(bad=UNSTABLE_GREY)
    image = ax.imshow(
        np.ma.masked_invalid(coloured), cmap=cmap, norm=norm, aspect="auto", origin="lower"
    )
    for (i, j), value in np.ndenumerate(values):
        if np.isnan(value):
            continue
        strong = not unstable[i, j] and abs(math.log(value)) > 0.6 * reach
        beyond = verdict.iat[i, j] in ("win", "loss")
        ax.text(
            j,
            i,
            f"{value:.2f}x",
            ha="center",
            va="center",
            color="white" if strong else "black",
            fontweight="bold" if beyond else "normal",
            fontstyle="italic" if unstable[i, j] else "normal",
        )
    ax.set_xticks(range(width), labels=[str(h) for h in speedup.columns])
    ax.set_yticks(range(height), labels=[str(t) for t in speedup.index])
    ax.set_xlabel("vocab size V (elements)" if logits else "hidden size H (elements)")
    ax.set_ylabel("tokens T per attention group")
    figure.suptitle(  # on the figure, not the axes: a long title must not be clipped
        f"{title}\nlist time / tensor time; >1 (blue): tensor faster; bold: beyond noise;"
        " grey: unstable, no verdict"
    )
    bar = figure.colorbar(image, ax=ax, label="speedup of the tensor form (log scale)")
    ticks = _speedup_ticks(reach)
    bar.set_ticks(ticks, labels=[f"{t:.3g}x" for t in ticks])
    bar.ax.minorticks_off()
    return figure


def _speedup_ticks(reach: float) -> np.ndarray:
    """Powers of the smallest round factor that needs at most 3 steps each side of 1.0."""
    factor = next((f for f in (1.05, 1.1, 1.25, 1.5, 2, 4) if reach / math.log(f) <= 3), 10)
    steps = math.floor(reach / math.log(factor) + 1e-9)
    return factor ** np.arange(-steps, steps + 1, dtype=float)


def _output_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"out: {str(path)!r} cannot be created: {err.strerror}") from None
    return path


def _save(figure: Figure, path: Path) -> Path:
    try:
        figure.savefig(path, format=path.suffix.lstrip("."))
    except OSError as err:
        raise UsageError(f"out: {str(path)!r} cannot be written: {err.strerror}") from None
    return path
