"""The end-of-run summary: where the tensor form wins, by how much, and where it does not.

Reads a run directory only (pandas, rich): it never imports torch, so `commbench
report DIR` renders the same summary on any machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from commbench.point import width_label
from commbench.results import KEY_COLUMNS
from commbench.runreader import Run, measured, read_run
from commbench.scenarios import (
    ROUTING,
    padding_cost,
    padding_lines,
    recommendation,
    round_trip,
    round_trip_lines,
    scenario_lines,
)
from commbench.stats import UNSTABLE_CV, geomean
from commbench.units import scale_bytes

SHAPE_COLUMNS = [c for c in KEY_COLUMNS if c != "variant"]
SIDE_COLUMNS = [
    "bytes",
    "padded_vocab",
    "time_us",
    "low",
    "high",
    "busbw_gbps",
    "padded_tokens",
    "note",
]


def _interval(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The 95% CI of the median where there were enough samples, else p10..p90."""
    low = rows["ci_low_us"].fillna(rows["time_us_p10"])
    high = rows["ci_high_us"].fillna(rows["time_us_p90"])
    return low, high


def side_by_side(results: pd.DataFrame) -> pd.DataFrame:
    """One row per shape and split with the list and tensor forms next to each other.

    `speedup` is list time / tensor time (above 1: the tensor form is faster).
    `verdict` is `win` or `loss` only when the two confidence intervals do not overlap:
    a difference inside the noise is a `tie`, whatever the ratio.
    """
    passed = measured(results).copy()
    passed["low"], passed["high"] = _interval(passed)
    sides = {
        variant: passed[passed["variant"] == variant].set_index(SHAPE_COLUMNS)[SIDE_COLUMNS]
        for variant in ("list", "tensor")
    }
    both = (
        sides["list"].add_suffix("_list").join(sides["tensor"].add_suffix("_tensor"), how="inner")
    )
    both["speedup"] = both["time_us_list"] / both["time_us_tensor"]
    both["verdict"] = np.select(
        [both["high_tensor"] < both["low_list"], both["low_tensor"] > both["high_list"]],
        ["win", "loss"],
        default="tie",
    )
    return both.reset_index()


def _where(row: pd.Series) -> str:
    return f"tp={row['tp']} dp={row['dp']} T={row['tokens']} {width_label(row)} {row['dtype']}"


def verdict_lines(comparison: pd.DataFrame) -> list[str]:
    """The summary in words, one paragraph per collective, derived from the numbers only."""
    lines = []
    for collective, rows in comparison.groupby("collective", sort=False):
        wins = int((rows["verdict"] == "win").sum())
        losses = rows[rows["verdict"] == "loss"]
        best = rows.loc[rows["speedup"].idxmax()]
        mean = geomean(rows["speedup"])
        text = (
            f"{collective}: the tensor form is faster beyond noise in {wins} of {len(rows)}"
            f" points; geometric-mean speedup {mean:.2f}x; largest win {best['speedup']:.2f}x"
            f" at {_where(best)}."
        )
        if len(losses):
            worst = losses.sort_values("speedup").head(3)
            places = "; ".join(f"{_where(r)} ({r['speedup']:.2f}x)" for _, r in worst.iterrows())
            text += f" Slower beyond noise in {len(losses)}: {places}."
        else:
            text += " Never slower beyond noise."
        lines.append(f"{text} Recommendation: {recommendation(wins, len(losses), mean)}.")
    return lines


def _size(nbytes: float) -> str:
    value, unit = scale_bytes(nbytes, largest="GiB")
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def _speedup_cell(row: pd.Series) -> str:
    colour = {"win": "green", "loss": "red"}.get(row["verdict"], "")
    text = f"{row['speedup']:.2f}x"
    return f"[{colour}]{text}[/{colour}]" if colour else text


def _time(us: float) -> str:
    return f"{us / 1e3:.2f} ms" if us >= 1e3 else f"{us:.1f} us"


def comparison_tables(comparison: pd.DataFrame) -> list[Table]:
    """One table per collective, split, dtype and hidden size: list vs tensor by tokens."""
    tables = []
    by = ["collective", "tp", "dp", "dtype", "hidden", "vocab", *ROUTING]
    for (collective, tp, dp, dtype, *_), rows in comparison.groupby(by, sort=False):
        width = width_label(rows.iloc[0])
        table = Table(title=f"{collective}  tp={tp} dp={dp}  {dtype} {width}")
        for name in ("tokens", "bytes", "list", "tensor", "list/tensor", "tensor busbw"):
            table.add_column(name, justify="right")
        table.add_column("notes")
        for _, row in rows.iterrows():
            notes = ""
            if row["padded_tokens_tensor"] != row["tokens"]:
                notes = f"pad {row['padded_tokens_tensor']}"
            if row["padded_vocab_tensor"] != row["vocab"]:
                notes += f"pad V {row['padded_vocab_tensor']}"
            if row["note_list"]:
                notes += "*"
            table.add_row(
                str(row["tokens"]),
                _size(row["bytes_tensor"]),
                _time(row["time_us_list"]),
                _time(row["time_us_tensor"]),
                _speedup_cell(row),
                f"{row['busbw_gbps_tensor']:.2f} GB/s",
                notes,
            )
        tables.append(table)
    return tables


def single_variant_table(results: pd.DataFrame, collective: str) -> Table | None:
    rows = measured(results[results["collective"] == collective])
    if rows.empty:
        return None
    table = Table(title=f"{collective} (reference, tensor form only)")
    for name in ("tp", "dp", "dtype", "hidden", "tokens", "bytes", "time", "busbw"):
        table.add_column(name, justify="right")
    for _, row in rows.iterrows():
        table.add_row(
            *(str(row[c]) for c in ("tp", "dp", "dtype", "hidden", "tokens")),
            _size(row["bytes"]),
            _time(row["time_us"]),
            f"{row['busbw_gbps']:.2f} GB/s",
        )
    return table


def problem_lines(results: pd.DataFrame) -> list[str]:
    """Failed checks, skipped points and unstable rows: reported, never hidden."""
    lines = []
    for _, row in results[results["check"] != "pass"].iterrows():
        lines.append(
            f"[red]{row['check']}[/red]: {row['collective']}/{row['variant']} {_where(row)}"
            + (f" ({row['note']})" if row["note"] else "")
        )
    unstable = results[results["cv"] >= UNSTABLE_CV]
    if len(unstable):
        lines.append(
            f"[yellow]{len(unstable)} unstable row(s)[/yellow] (cv >= {UNSTABLE_CV:.2f}; "
            f"{int(unstable['outliers'].sum())} Tukey outliers among their samples): "
            + "; ".join(
                f"{r['collective']}/{r['variant']} {_where(r)} cv={r['cv']:.2f}"
                for _, r in unstable.head(5).iterrows()
            )
        )
    return lines


def render(run: Run, console: Console) -> None:
    results = run.results
    comparison = side_by_side(results)
    compared = set(comparison["collective"])
    for table in comparison_tables(comparison):
        console.print(table)
    for collective in results["collective"].unique():
        if collective not in compared:
            table = single_variant_table(results, collective)
            if table is not None:
                console.print(table)
    console.print(
        "list/tensor > 1: the tensor form is faster (green/red: beyond noise). pad N: the"
        " tensor form pads the tokens to N, a multiple of tp, while the list form runs uneven;"
        " * the list form ran as the note below says."
    )
    for note in sorted(set(results["note"]) - {""}):
        console.print(f"* {note}")
    console.print(
        f"[bold]Summary[/bold] ({run.label}, {run.meta.backend}, world {run.meta.world_size}):"
    )
    for line in verdict_lines(comparison):
        console.print(f"- {line}")
    console.print("[bold]By serving phase[/bold] (speedup = list / tensor):")
    for line in scenario_lines(comparison):
        console.print(f"- {line}")
    for line in padding_lines(padding_cost(results)):
        console.print(f"- {line}")
    for line in round_trip_lines(round_trip(results)):
        console.print(f"- {line}")
    for line in problem_lines(results):
        console.print(f"- {line}")
    console.print(f"Files: {run.path}")


def render_run(path: Path, console: Console | None = None) -> Run:
    run = read_run(path)
    render(run, console or Console())
    return run
