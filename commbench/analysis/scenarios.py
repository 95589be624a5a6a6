"""The serving view of a run: decode vs prefill, the crossover, padding, the round trip.

SGLang decodes with CUDA-graph batches of up to 512 tokens and prefills in chunks of
1024 to 16384 tokens per attention group; an engineer decides per split in those terms.
Pure functions of the result tables: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from commbench.analysis.stats import UNSTABLE_CV, geomean
from commbench.rundir.reader import measured

DECODE_MAX_TOKENS = 512
ROUTING = ["experts", "topk", "skew"]  # zeros where a row is not routed
SPLIT = ["collective", "tp", "dp", "dtype", *ROUTING]


VERDICTS = ("win", "loss", "tie", "unstable")


@dataclass(frozen=True)
class VerdictCounts:
    """How a set of shapes' verdicts fell (analysis.summary.side_by_side's `verdict`)."""

    wins: int
    losses: int
    ties: int
    unstable: int

    @property
    def total(self) -> int:
        return self.wins + self.losses + self.ties + self.unstable


def verdict_counts(rows: pd.DataFrame) -> VerdictCounts:
    counts = rows["verdict"].value_counts()
    return VerdictCounts(*(int(counts.get(name, 0)) for name in VERDICTS))


def recommendation(counts: VerdictCounts, geomean_speedup: float) -> str:
    """What to do, as a sentence, from the shapes where one form is faster beyond noise
    and both are stable; where there are none, no recommendation, and why."""
    wins, losses = counts.wins, counts.losses
    if counts.unstable and not wins and not losses:
        ties = f", {counts.ties} tie(s) within noise" if counts.ties else ""
        return (
            f"No recommendation: {counts.unstable} of {counts.total} points are unstable"
            f" (cv >= {UNSTABLE_CV:.2f}){ties}, none faster beyond noise; measure on a"
            " quieter machine."
        )
    if wins and not losses:
        advice = "use the tensor form"
    elif losses and not wins:
        advice = (
            "keep the list form; the tensor form is slower here"
            if losses > 1 and geomean_speedup < 1
            else "no gain from the tensor form; it is slower at the shapes above"
        )
    elif wins and losses:
        lead = "the tensor form" if geomean_speedup >= 1 else "the list form"
        advice = f"{lead} is faster overall; choose per shape (it loses at the shapes above)"
    else:
        advice = "no difference beyond noise; either form"
    return f"Recommendation: {advice}."


def routing_label(row: pd.Series) -> str:
    """` E=256 k=8 s=1.2` for a routed row, else nothing."""
    return f" E={row['experts']} k={row['topk']} s={row['skew']:g}" if row["experts"] else ""


def crossover(faster: pd.Series, forms: tuple[str, str] = ("tensor", "list")) -> str:
    """Where the faster form changes with the token count, in words. `faster` is indexed
    by tokens (ascending): True where `forms[0]` is faster, False where `forms[1]` is,
    None where neither is beyond noise (those token counts carry no claim)."""
    decided = faster.dropna().astype(bool)
    if decided.empty:
        return "no difference beyond noise at any T"
    everywhere = "every token count"
    if len(decided) < len(faster):
        everywhere += f" where the forms differ beyond noise ({len(decided)} of {len(faster)})"
    if decided.all():
        return f"{forms[0]} faster at {everywhere}"
    if not decided.any():
        return f"{forms[1]} faster at {everywhere}"
    changes = [
        (low, high, bool(decided[high]))
        for low, high in zip(decided.index[:-1], decided.index[1:], strict=True)
        if decided[low] != decided[high]
    ]
    if len(changes) == 1:
        low, high, first_above = changes[0]
        wins = forms[0] if first_above else forms[1]
        return f"crossover between T={low} and T={high} ({wins} faster above)"
    return "no single crossover (the sign changes " + f"{len(changes)} times)"


def _faster_by_tokens(rows: pd.DataFrame) -> pd.Series:
    """Per token count: True where the tensor form wins beyond noise (and loses nowhere at
    that T), False where it loses (and wins nowhere), else None."""

    def side(verdicts: pd.Series) -> bool | None:
        win, loss = (verdicts == "win").any(), (verdicts == "loss").any()
        return bool(win) if win != loss else None

    return rows.groupby("tokens")["verdict"].apply(side).sort_index()


def _phase(speedups: pd.Series, tokens: pd.Series, decode: bool) -> str:
    chosen = speedups[(tokens <= DECODE_MAX_TOKENS) == decode]
    return f"{geomean(chosen):.2f}x" if len(chosen) else "not measured"


def scenario_lines(comparison: pd.DataFrame) -> list[str]:
    """Per collective and split: decode and prefill speedups, crossover, padding cost.

    `comparison` is report.side_by_side's table (speedup = list time / tensor time).
    """
    lines = []
    for (collective, tp, dp, dtype, *_), rows in comparison.groupby(SPLIT, sort=False):
        faster = _faster_by_tokens(rows)
        shape = crossover(faster)
        phases = (
            f"decode (T<={DECODE_MAX_TOKENS}) {_phase(rows['speedup'], rows['tokens'], True)},"
            f" prefill {_phase(rows['speedup'], rows['tokens'], False)}"
        )
        where = f"{collective} tp={tp} dp={dp} {dtype}{routing_label(rows.iloc[0])}"
        if faster.dropna().empty:  # nothing beyond noise: no figure leads
            text = f"{where}: {shape} (medians' ratios, within the noise: {phases})"
        else:
            text = f"{where}: {phases}; {shape}"
        # where the tensor form padded (the logits along the vocabulary, the others along
        # the tokens; the routed forms never pad the tokens)
        padded_vocab = rows["padded_vocab_tensor"] != rows["vocab"]
        uneven = rows[padded_vocab | (rows["padded_tokens_tensor"] != rows["tokens"])]
        along = "V" if padded_vocab.any() else "T"
        if len(uneven):
            text += (
                f"; where {along} is not a multiple of {tp}, padding for the tensor form vs the"
                f" list form's uneven fallback: {geomean(uneven['speedup']):.2f}x"
                f" ({len(uneven)} point{'s' * (len(uneven) > 1)})"
            )
        lines.append(f"{text}. {recommendation(verdict_counts(rows), geomean(rows['speedup']))}")
    return lines


def padding_cost(results: pd.DataFrame) -> pd.DataFrame:
    """Per shape where both ran: the padded form's time over the uneven tensor form's
    (`cost`, above 1: padding to capacity is slower) and the bytes it moves over the
    routed ones (`bytes_ratio`)."""
    passed = measured(results)
    if not {"padded", "tensor"} <= set(passed["variant"]):  # before the costly pivot
        return pd.DataFrame()
    shape = [*SPLIT, "hidden", "tokens"]
    times = passed.pivot_table(index=shape, columns="variant", values="time_us", aggfunc="first")
    padded = passed[passed["variant"] == "padded"].set_index(shape)
    table = pd.DataFrame(
        {
            "cost": times["padded"] / times["tensor"],
            "bytes_ratio": padded["padded_bytes"] / padded["routed_bytes"],
        }
    )
    return table.dropna().reset_index()


def padding_lines(table: pd.DataFrame) -> list[str]:
    """Per split and routing (all skews in one sentence): what padding every chunk to
    capacity costs against the uneven tensor form, by serving phase, and where it crosses."""
    if table.empty:
        return []
    lines = []
    split = ["collective", "tp", "dp", "dtype", "experts", "topk"]
    for (collective, tp, dp, dtype, experts, topk), rows in table.groupby(split, sort=False):
        parts = []
        for skew, at_skew in rows.groupby("skew", sort=True):
            by_tokens = 1 / at_skew.groupby("tokens")["cost"].apply(geomean).sort_index()
            parts.append(
                f"s={skew:g}: {geomean(at_skew['bytes_ratio']):.2f}x the bytes; time"
                f" {_phase(at_skew['cost'], at_skew['tokens'], True)} in decode,"
                f" {_phase(at_skew['cost'], at_skew['tokens'], False)} in prefill;"
                f" {crossover(by_tokens > 1, ('padded', 'tensor'))}"
            )
        lines.append(
            f"padding to capacity, {collective} tp={tp} dp={dp} {dtype} E={experts} k={topk}"
            f" (padded / tensor form): {'; '.join(parts)}."
        )
    return lines


def round_trip(results: pd.DataFrame) -> pd.DataFrame:
    """reduce_scatter + all_gather (what DP attention does around the norm) next to one
    all_reduce of the same [T, H], per variant where both halves were measured."""
    passed = measured(results)
    if "all_reduce" not in set(passed["collective"]):  # before the costly pivot
        return pd.DataFrame()
    shape = ["tp", "dp", "dtype", "hidden", "tokens"]
    times = passed.pivot_table(
        index=shape, columns=["collective", "variant"], values="time_us", aggfunc="first"
    )
    table = pd.DataFrame({"all_reduce us": times[("all_reduce", "tensor")]})
    for variant in ("list", "tensor"):
        halves = [("reduce_scatter", variant), ("all_gather", variant)]
        if all(half in times.columns for half in halves):
            trip = times[halves[0]] + times[halves[1]]
            table[f"rs+ag {variant} us"] = trip
            table[f"rs+ag {variant} / all_reduce"] = trip / table["all_reduce us"]
    if len(table.columns) == 1:
        return pd.DataFrame()
    return table.dropna(how="all", subset=table.columns[1:]).reset_index()


def round_trip_lines(table: pd.DataFrame) -> list[str]:
    """One sentence per split: how the round trip compares with one all_reduce."""
    if table.empty:  # all_reduce, or both halves of a variant, not measured
        return []
    lines = []
    ratio_columns = [c for c in table.columns if c.endswith("/ all_reduce")]
    for (tp, dp, dtype), rows in table.groupby(["tp", "dp", "dtype"], sort=False):
        parts = [
            f"{column.split()[1]} form {geomean(rows[column].dropna()):.2f}x"
            for column in ratio_columns
            if rows[column].notna().any()
        ]
        lines.append(
            f"round trip tp={tp} dp={dp} {dtype}: reduce_scatter + all_gather takes, in"
            f" geometric mean over token counts, {' and '.join(parts)} the time of one"
            " all_reduce of the same [T, H] (below 1: the round trip is cheaper)."
        )
    return lines
