"""What a GPU run's files must hold, judged without a GPU (pure: tested on CPU)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from commbench.point import ELEMENT_SIZE

CUDA_BLOCK = 512  # bytes: the caching allocator rounds every allocation up to this


def nccl_scrambles(row: pd.Series) -> bool:
    """ProcessGroupNCCL's uneven list all_gather writes raw bytes into SGLang's transposed
    views (ops/all_gather.py, list_gather): wrong for T > 1 where tp does not divide V."""
    return (
        row["collective"] == "logits_gather"
        and row["variant"] == "list"
        and row["vocab"] % row["tp"] != 0
        and row["tokens"] > 1
    )


def judge_exact(results: pd.DataFrame) -> tuple[str, bool]:
    """Every row exact, but the rows the raw-byte path scrambles, which must fail."""
    predicted = results.apply(nccl_scrambles, axis=1)
    wrong = results[(results["check"] == "fail") != predicted]
    text = f"{len(results)} rows: {int((results['check'] == 'pass').sum())} exact"
    text += f", {int(predicted.sum())} predicted scrambled"
    if len(wrong):
        text += "; unexpected: " + ", ".join(
            f"{r.collective}/{r.variant} {r.dtype} T={r.tokens} tp={r.tp} V={r.vocab}: {r.check}"
            for r in wrong.head(3).itertuples()
        )
    return text, len(wrong) == 0 and len(results) > 0


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
    measured = results.dropna(subset=["temp_mem_bytes"])
    expected = measured.apply(flat_bytes, axis=1)
    wrong = measured[measured["temp_mem_bytes"] != expected]
    text = f"{len(measured) - len(wrong)} of {len(measured)} rows equal"
    if len(wrong):
        r = wrong.iloc[0]
        text += (
            f"; e.g. {r['collective']}/{r['variant']} T={r['tokens']} tp={r['tp']}:"
            f" {r['temp_mem_bytes']:.0f} != {expected[wrong.index[0]]}"
        )
    return text, len(wrong) == 0 and len(measured) > 0


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
