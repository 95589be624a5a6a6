"""Synthetic run directories in the real format, for tests of the file consumers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from commbench.analysis.stats import summarize
from commbench.rundir.schema import KEY_COLUMNS, RESULTS_CSV, SAMPLES_CSV
from commbench.rundir.writer import RunWriter

META = {
    "label": None,
    "versions": {"commbench": "0.1.0", "torch": "2.13.0", "cuda": None, "nccl_built": None},
    "backend": "gloo",
    "world_size": 4,
    "nodes": 1,
    "devices": [{"type": "cpu", "name": "x86_64"}] * 4,
    "config_hash": "abc",
    "env": {},
    "layout": "contiguous",
}


def key(
    collective="all_gather",
    variant="tensor",
    tokens=128,
    tp=2,
    dtype="bfloat16",
    experts=0,
    topk=0,
    skew=0.0,
    backend="gloo",
):
    return {
        "collective": collective,
        "variant": variant,
        "backend": backend,
        "world_size": 4,
        "dp": 4 // tp,
        "tp": tp,
        "dtype": dtype,
        "tokens": tokens,
        "hidden": 1024,
        "vocab": 0,
        "experts": experts,
        "topk": topk,
        "skew": skew,
    }


def samples_around(median: float, count: int = 12, spread: float = 0.01, seed: int = 0):
    rng = np.random.default_rng(seed)
    return median * (1 + spread * rng.standard_normal(count))


def write_run(path: Path, rows: list[tuple[dict, object]], rounds: int = 1, **meta) -> Path:
    """rows: (key, samples in us) or (key, "fail" | "skipped"). Samples are split evenly
    over rounds."""
    writer = RunWriter.create(path)
    writer.write_meta({**META, "config": {"rounds": rounds}, **meta})
    for row_key, samples in rows:
        fixed = {
            **row_key,
            "padded_tokens": row_key["tokens"],
            "padded_vocab": row_key["vocab"],
            "bytes": row_key["tokens"] * 2048,
        }
        fixed.update(api="x", note="", iters=1, stop="ci", rounds=rounds)
        if isinstance(samples, str):
            writer.results.append([{**fixed, "check": samples}])
            continue
        s = summarize(samples)
        writer.results.append(
            [
                {
                    **fixed,
                    "check": "pass",
                    "time_us": s.median,
                    "time_us_p10": s.p10,
                    "time_us_p90": s.p90,
                    "time_us_min": s.min,
                    "time_us_mean": s.mean,
                    "time_us_std": s.std,
                    "ci_low_us": s.ci_low,
                    "ci_high_us": s.ci_high,
                    "cv": s.cv,
                    "outliers": s.outliers,
                    "samples": s.samples,
                    "algbw_gbps": 1.0,
                    "busbw_gbps": 0.5,
                }
            ]
        )
        writer.samples.append(
            [
                {
                    **{k: row_key[k] for k in KEY_COLUMNS},
                    "round": i * rounds // len(samples),
                    "sample": i,
                    "time_us": t,
                    "slowest_rank": 0,
                }
                for i, t in enumerate(samples)
            ]
        )
    writer.close()
    return path


def slowed_copy(run: Path, into: Path, factor: float) -> Path:
    """A copy of a run directory (a real one) with every time `factor` times longer."""
    shutil.copytree(run, into)
    samples = pd.read_csv(into / SAMPLES_CSV)
    samples["time_us"] *= factor
    samples.to_csv(into / SAMPLES_CSV, index=False)
    results = pd.read_csv(into / RESULTS_CSV)
    times = [c for c in results.columns if c.startswith(("time_us", "ci_"))]
    results[times] *= factor
    results.to_csv(into / RESULTS_CSV, index=False)
    return into
