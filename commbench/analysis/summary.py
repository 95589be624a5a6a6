"""The end-of-run summary in numbers and words: list and tensor side by side, where the
tensor form wins beyond noise, and what was not measured. Pure: pandas only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from commbench.analysis.scenarios import recommendation, verdict_counts
from commbench.analysis.stats import UNSTABLE_CV, geomean
from commbench.point import width_label
from commbench.rundir.reader import measured
from commbench.rundir.schema import KEY_COLUMNS

UNSTABLE_SHOWN = 5  # unstable rows named in the summary; the rest are counted

SHAPE_COLUMNS = [c for c in KEY_COLUMNS if c != "variant"]
SIDE_COLUMNS = [
    "bytes",
    "cv",
    "padded_vocab",
    "time_us",
    "low",
    "high",
    "busbw_gbps",
    "padded_tokens",
    "note",
]


def median_interval(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The 95% CI of the median where there were enough samples, else p10..p90."""
    low = rows["ci_low_us"].fillna(rows["time_us_p10"])
    high = rows["ci_high_us"].fillna(rows["time_us_p90"])
    return low, high


# How every table of a run orders its rows (a run's files hold them in the shuffled order
# of its rounds): by split, dtype, width, then tokens
ROW_ORDER = ["tp", "dp", "dtype", "hidden", "vocab", "tokens"]


def in_order(rows: pd.DataFrame, first: list[str] | None = None) -> pd.DataFrame:
    """`rows` by `first` (the collective, say), then ROW_ORDER."""
    return rows.sort_values([*(first or []), *ROW_ORDER], kind="stable")


def side_by_side(results: pd.DataFrame) -> pd.DataFrame:
    """One row per shape and split with the list and tensor forms next to each other.

    `speedup` is list time / tensor time (above 1: the tensor form is faster).
    `verdict` is `win` or `loss` only when the two confidence intervals do not overlap:
    a difference inside the noise is a `tie`, whatever the ratio. A shape where either
    form is unstable (cv >= UNSTABLE_CV) is `unstable`: its samples scatter too much for
    its interval to carry a verdict, so no advice rests on it.
    """
    passed = measured(results).copy()
    passed["low"], passed["high"] = median_interval(passed)
    sides = {
        variant: passed[passed["variant"] == variant].set_index(SHAPE_COLUMNS)[SIDE_COLUMNS]
        for variant in ("list", "tensor")
    }
    both = (
        sides["list"].add_suffix("_list").join(sides["tensor"].add_suffix("_tensor"), how="inner")
    )
    both["speedup"] = both["time_us_list"] / both["time_us_tensor"]
    both["verdict"] = np.select(
        [
            (both["cv_list"] >= UNSTABLE_CV) | (both["cv_tensor"] >= UNSTABLE_CV),
            both["high_tensor"] < both["low_list"],
            both["low_tensor"] > both["high_list"],
        ],
        ["unstable", "win", "loss"],
        default="tie",
    )
    return both.reset_index()


def _where(row: pd.Series) -> str:
    return f"tp={row['tp']} dp={row['dp']} T={row['tokens']} {width_label(row)} {row['dtype']}"


def verdict_lines(comparison: pd.DataFrame) -> list[str]:
    """The summary in words, one paragraph per collective, derived from the numbers only:
    every claim and the recommendation rest on the win/loss verdicts alone (intervals
    apart, both forms stable)."""
    lines = []
    for collective, rows in comparison.groupby("collective", sort=False):
        counts = verdict_counts(rows)
        wins = rows[rows["verdict"] == "win"]
        losses = rows[rows["verdict"] == "loss"]
        mean = geomean(rows["speedup"])
        unstable = f" ({counts.unstable} unstable, not counted)" if counts.unstable else ""
        if not counts.wins and not counts.losses:  # no figure leads where none is beyond noise
            text = (
                f"{collective}: no difference beyond noise at any of its {len(rows)}"
                f" points{unstable} (their medians' ratio, {mean:.2f}x, is within it)."
            )
            lines.append(f"{text} {recommendation(counts, mean)}")
            continue
        text = (
            f"{collective}: the tensor form is faster beyond noise in {counts.wins} of"
            f" {len(rows)} points{unstable}; geometric-mean speedup {mean:.2f}x"
        )
        if len(wins):
            best = wins.loc[wins["speedup"].idxmax()]
            text += f"; largest win {best['speedup']:.2f}x at {_where(best)}"
        text += "."
        if len(losses):
            worst = losses.sort_values("speedup").head(3)
            places = "; ".join(f"{_where(r)} ({r['speedup']:.2f}x)" for _, r in worst.iterrows())
            text += f" Slower beyond noise in {len(losses)}: {places}."
        elif counts.wins:
            text += " Never slower beyond noise."
        lines.append(f"{text} {recommendation(counts, mean)}")
    return lines


def failed_line(results: pd.DataFrame, shown: int = 2) -> str | None:
    """The closing line of a run with failed checks: how many, which, and why."""
    failed = results[results["check"] == "fail"]
    if failed.empty:
        return None
    named = "; ".join(
        f"{row['collective']}/{row['variant']} {_where(row)}"
        + (f" ({row['note']})" if row["note"] else "")
        for _, row in failed.head(shown).iterrows()
    )
    more = f"; and {len(failed) - shown} more" if len(failed) > shown else ""
    return f"{len(failed)} point(s) failed the exact-output check: {named}{more}"


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
                for _, r in unstable.head(UNSTABLE_SHOWN).iterrows()
            )
            + (f"; and {len(unstable) - UNSTABLE_SHOWN} more" * (len(unstable) > UNSTABLE_SHOWN))
        )
    return lines
