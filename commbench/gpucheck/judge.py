"""What a GPU run's files must hold, judged without a GPU (pure: tested on CPU)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from commbench.point import ELEMENT_SIZE

CUDA_BLOCK = 512  # bytes: the caching allocator rounds every allocation up to this
SHOWN = 3  # unexpected rows named in a verdict; the rest are counted
ROUTED = ("all_to_all", "all_to_all_combine")


def nccl_scrambles(row: pd.Series) -> bool:
    """ProcessGroupNCCL's uneven list all_gather writes raw bytes into SGLang's transposed
    views (ops/all_gather.py, list_gather): wrong for T > 1 where tp does not divide V.
    On gloo the same rows run correctly and pass, NCCL's defect a note."""
    return (
        row["backend"] == "nccl"
        and row["collective"] == "logits_gather"
        and row["variant"] == "list"
        and row["vocab"] % row["tp"] != 0
        and row["tokens"] > 1
    )


def exact_unless_scrambled(row: pd.Series) -> str:
    """The check every row of the exact sweep must end with."""
    return "fail" if nccl_scrambles(row) else "pass"


def skipped(row: pd.Series) -> str:
    return "skipped"


def describe(row: pd.Series) -> str:
    """A row in a few words: which point it is."""
    width = f"V={row['vocab']}" if row["vocab"] else f"H={row['hidden']}"
    return (
        f"{row['collective']}/{row['variant']} {row['dtype']} T={row['tokens']}"
        f" tp={row['tp']} {width}"
    )


def judge_rows(results: pd.DataFrame, predict: Callable[[pd.Series], str]) -> tuple[str, bool]:
    """Every row's check must be the one `predict` gives it: `pass`, `fail` (a known
    defect, which must show) or `skipped` (with its reason in the note). A row skipped
    where it should have passed is wrong: a skip proves nothing about the operation."""
    if results.empty:
        return "no rows", False
    notes = results["note"].fillna("").astype(str)
    predicted = results.apply(predict, axis=1)
    unexplained = (results["check"] == "skipped") & (notes.str.strip() == "")
    wrong = results[(results["check"] != predicted) | unexplained]
    counts = results["check"].value_counts()
    text = f"{len(results)} rows: " + ", ".join(f"{n} {c}" for c, n in counts.items())
    if len(wrong):
        shown = []
        for index, row in wrong.head(SHOWN).iterrows():
            why = "no reason given" if unexplained[index] else notes[index]
            said = f" ({why})" if why else ""
            shown.append(f"{describe(row)}: {row['check']}, expected {predicted[index]}{said}")
        more = f" and {len(wrong) - SHOWN} more" if len(wrong) > SHOWN else ""
        text += "; unexpected: " + "; ".join(shown) + more
    elif (predicted == "skipped").any():
        text += f"; why: {notes[predicted == 'skipped'].iloc[0]}"
    return text, wrong.empty


def flat_bytes(row: pd.Series) -> int:
    """The flat buffer ProcessGroupNCCL allocates for a list form of equal chunks, as the
    caching allocator rounds it; 0 for tensor forms and uneven lists (broadcasts)."""
    if row["variant"] != "list" or row["collective"] == "all_reduce":
        return 0
    split = row["vocab"] if row["collective"] == "logits_gather" else row["tokens"]
    if split % row["tp"]:
        return 0
    nbytes = row["tokens"] * (row["hidden"] or row["vocab"]) * ELEMENT_SIZE[row["dtype"]]
    return -(-nbytes // CUDA_BLOCK) * CUDA_BLOCK


def judge_temp_mem(results: pd.DataFrame) -> tuple[str, bool]:
    """Each gathering or scattering list row's temporary bytes are its flat buffer, every
    tensor form's 0 (the routed collectives are not predicted here: left out)."""
    kept = results[~results["collective"].isin(ROUTED)]
    measured = kept.dropna(subset=["temp_mem_bytes"])
    expected = measured.apply(flat_bytes, axis=1)
    wrong = measured[measured["temp_mem_bytes"] != expected]
    text = f"{len(measured) - len(wrong)} of {len(measured)} rows equal"
    if len(wrong):
        index = wrong.index[0]
        text += (
            f"; e.g. {describe(wrong.loc[index])}:"
            f" {wrong.loc[index, 'temp_mem_bytes']:.0f} != {expected[index]}"
        )
    return text, len(wrong) == 0 and len(measured) > 0


def judge_device_peak(memory: dict | None, at_least: int) -> tuple[str, bool]:
    """meta.json's `device_peak_bytes`: a number on every rank, and at least `at_least`
    (what the largest point's buffers alone hold)."""
    peaks = (memory or {}).get("device_peak_bytes") or []
    if not peaks or any(peak is None for peak in peaks):
        return f"device_peak_bytes {peaks or 'absent'}: not known on every rank", False
    low = min(peaks)
    text = f"lowest rank's {low / 2**20:.1f} MiB, at least {at_least / 2**20:.1f} MiB wanted"
    return text, low >= at_least


def first_sample_outliers(samples: pd.DataFrame) -> tuple[int, int]:
    """(rounds whose first sample lies above the Tukey fence of the others, rounds)."""
    keys = [c for c in samples.columns if c not in ("sample", "time_us", "slowest_rank")]
    outliers = total = 0
    for _, group in samples.sort_values("sample").groupby(keys):
        times = group["time_us"].to_numpy()
        if len(times) < 4:
            continue
        rest = times[1:]
        q1, q3 = np.percentile(rest, [25, 75])
        total += 1
        outliers += bool(times[0] > max(q3 + 1.5 * (q3 - q1), 1.1 * np.median(rest)))
    return outliers, total
