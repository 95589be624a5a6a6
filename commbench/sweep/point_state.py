"""A point's state across a sweep's rounds, and the row it becomes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from commbench.analysis.stats import summarize
from commbench.config.settings import SweepConfig
from commbench.ops import REGISTRY
from commbench.ops.base import Bound
from commbench.point import Point
from commbench.rundir.resume import RunProgress
from commbench.sweep.timing import Measurement
from commbench.sweep.world import World


@dataclass
class PointState:
    """One point's row and its measurements so far, accumulated over rounds."""

    row: dict[str, Any] = field(default_factory=dict)
    iters: int | None = None  # K, chosen in the first round and kept for the others
    rounds: list[Measurement] = field(default_factory=list)
    checked: bool = False  # by this process: a resumed point is checked again
    final: bool = False  # its results row is written: nothing left to do

    def samples_s(self) -> np.ndarray:
        return np.concatenate([m.samples for m in self.rounds])

    def final_row(self, bus_factor: float) -> dict[str, Any]:
        """The row's statistics over the samples of every round (docs/method.md, "Timing")."""
        summary = summarize(self.samples_s() * 1e6)
        algbw = self.row["bytes"] / (summary.median / 1e6) / 1e9
        stops = Counter(m.stop for m in self.rounds)
        return {
            **self.row,
            "time_us": summary.median,
            "time_us_p10": summary.p10,
            "time_us_p90": summary.p90,
            "time_us_min": summary.min,
            "time_us_mean": summary.mean,
            "time_us_std": summary.std,
            "ci_low_us": summary.ci_low,
            "ci_high_us": summary.ci_high,
            "cv": summary.cv,
            "outliers": summary.outliers,
            "samples": summary.samples,
            "rounds": len(self.rounds),
            "iters": self.iters,
            "stop": stops.most_common(1)[0][0],
            "algbw_gbps": algbw,
            "busbw_gbps": algbw * bus_factor,
        }


def fixed_row(point: Point, world: World, config: SweepConfig) -> dict[str, Any]:
    """The row's columns known before anything is allocated."""
    return {
        **point.key(),
        "backend": world.backend,
        "bytes": REGISTRY[point.collective].bytes(point),
        **REGISTRY[point.collective].columns(point),
        "layout": world.layout,
        "cuda_graph": config.cuda_graph,
    }


def bound_row(bound: Bound) -> dict[str, Any]:
    """The row's columns the bound variant decides."""
    return {
        "padded_tokens": bound.padded_tokens,
        "padded_vocab": bound.padded_vocab,
        "api": bound.api,
        "note": bound.note,
    }


def recorded_state(progress: RunProgress, key: tuple[str, ...], rounds: int) -> PointState:
    """A point's state as an interrupted run left it."""
    finished = progress.finished.get(key)
    if finished is not None:
        return PointState(row=finished, checked=True, final=True)
    state = PointState()
    for round_ in range(rounds):
        recorded = progress.rounds.get((key, round_))
        if recorded is None:
            break
        state.iters = recorded.iters
        state.rounds.append(
            Measurement(
                recorded.iters,
                np.array(recorded.samples_us) / 1e6,
                np.array(recorded.rank_samples_us) / 1e6,
                recorded.stop,
            )
        )
    return state
