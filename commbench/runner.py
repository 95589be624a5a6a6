"""Drives a sweep on every rank: for each point, bind buffers, check, time, record.

Every rank walks the same plan in the same order. Decisions that could differ between
ranks (a check verdict, when to stop sampling, whether the output is writable) are
taken together over the control group, so no rank is ever left waiting in a collective.
Only rank 0 prints and writes.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from commbench import envinfo
from commbench.config import SweepConfig
from commbench.errors import UsageError
from commbench.groups import World, close_world, init_world, world_size_from_env
from commbench.nccl import verify_preloaded
from commbench.ops import REGISTRY
from commbench.ops.base import Bound
from commbench.plan import build_plan, round_order
from commbench.point import Point
from commbench.results import KEY_COLUMNS, RunWriter, default_run_dir
from commbench.stats import summarize
from commbench.timing import Measurement, measure, synchronize, temporary_bytes


def check(bound: Bound, world: World) -> bool:
    """Run once on the check pattern and compare bit for bit, agreed over all ranks."""
    bound.fill()
    bound.run()
    synchronize(world.device)
    return world.all_true(torch.equal(bound.output, bound.expected()))


@dataclass
class PointState:
    """One point's row and its measurements so far, accumulated over rounds."""

    row: dict[str, Any]
    iters: int | None = None  # K, chosen in the first round and kept for the others
    rounds: list[Measurement] = field(default_factory=list)

    def samples_s(self) -> np.ndarray:
        return np.concatenate([m.samples for m in self.rounds])

    def final_row(self, bus_factor: float) -> dict[str, Any]:
        """The row's statistics over the samples of every round (METHOD.md, "Timing")."""
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


def bind(point: Point, world: World) -> tuple[Bound, dict[str, Any]]:
    """The variant's buffers on this rank, and the row's fixed columns."""
    collective = REGISTRY[point.collective]
    bound = collective.variants[point.variant](point, world.split(point.tp))
    row = {
        **point.key(),
        "backend": world.backend,
        "padded_tokens": bound.padded_tokens,
        "padded_vocab": bound.padded_vocab,
        "bytes": collective.bytes(point),
        "api": bound.api,
        "note": bound.note,
    }
    return bound, row


def sample_rows(
    key: dict[str, Any], measurement: Measurement, round_: int, first: int
) -> tuple[list[dict], list[dict]]:
    """samples.csv and rank_samples.csv rows of one round; `first` numbers its first sample."""
    samples, rank_samples = [], []
    for i, per_rank in enumerate(measurement.rank_samples, start=first):
        slowest = int(np.argmax(per_rank))
        common = {**key, "round": round_, "sample": i}
        samples.append({**common, "time_us": per_rank[slowest] * 1e6, "slowest_rank": slowest})
        rank_samples += [
            {**common, "rank": rank, "time_us": t * 1e6} for rank, t in enumerate(per_rank)
        ]
    return samples, rank_samples


def _open_output(world: World, config: SweepConfig) -> RunWriter | None:
    """Rank 0 creates the run directory; every rank learns whether that worked."""
    writer, error = None, None
    if world.rank == 0:
        path = Path(config.out) if config.out else default_run_dir(config.label)
        try:
            writer = RunWriter.create(path)
        except UsageError as err:
            error = str(err)
    error = world.gather_objects(error)[0]
    if error:
        raise UsageError(error)
    return writer


def _meta(world: World, config: SweepConfig, plan: list[Point], started: str) -> dict[str, Any]:
    ranks = world.gather_objects(envinfo.collect_rank(world.device))
    hostnames = [rank["hostname"] for rank in ranks]
    versions = [rank["versions"] for rank in ranks]
    disagree = sorted(
        {name for v in versions for name in v if v.get(name) != versions[0].get(name)}
    )
    return {
        "label": config.label,
        "versions": versions[0],
        "ranks_disagree": {name: [v.get(name) for v in versions] for name in disagree},
        "backend": world.backend,
        "world_size": world.size,
        "nodes": len(set(hostnames)),
        "hostnames": hostnames,
        "devices": [rank["device"] for rank in ranks],
        "config": config.model_dump(),
        "config_hash": config.config_hash(),
        "points": len(plan),
        "env": envinfo.collect_env(),
        "topology": envinfo.collect_topology() if world.rank == 0 else None,
        "host": envinfo.collect_host(),
        "started": started,
        "finished": None,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_sweep(config: SweepConfig, console: Console | None = None) -> int:
    """Run the whole sweep on this rank. Returns the exit code (1: a check failed)."""
    plan = build_plan(config, world_size_from_env())  # bad input ends here, on every rank
    verify_preloaded(os.environ)  # --nccl-lib: the library loaded must be the one asked for
    world = init_world(config.backend)
    try:
        return _run(world, config, plan, console or Console())
    finally:
        close_world()


def _run(world: World, config: SweepConfig, plan: list[Point], console: Console) -> int:
    writer = _open_output(world, config)
    meta = _meta(world, config, plan, _now())
    for name, values in meta["ranks_disagree"].items():
        console.print(f"[yellow]warning: ranks disagree on {name}: {values}[/yellow]")
    if writer:
        writer.write_meta(meta)  # a run that dies still says what it was
    states: dict[Point, PointState] = {}
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        auto_refresh=False,  # no refresh thread competing with the timed loop for a core
        disable=world.rank != 0,
    )
    with progress:
        task = progress.add_task("sweep", total=len(plan) * config.rounds)
        for round_, point in round_order(plan, config.rounds, config.seed):
            progress.update(task, description=f"{point.describe()}", refresh=True)
            _step(point, round_, states, world, config, writer)
            progress.advance(task)
    failed = sum(state.row["check"] == "fail" for state in states.values())
    if writer:
        apis: dict[str, set[str]] = {}
        for point, state in states.items():
            apis.setdefault(f"{point.collective}.{point.variant}", set()).add(state.row["api"])
        apis_used = {name: sorted(used) for name, used in sorted(apis.items())}
        writer.write_meta({**meta, "apis": apis_used, "finished": _now()})
        writer.close()
        from commbench.report import render_run

        render_run(writer.path, console)
        if failed:
            console.print(f"[red]{failed} point(s) failed the exact-output check[/red]")
    return 1 if failed else 0


def _step(
    point: Point,
    round_: int,
    states: dict[Point, PointState],
    world: World,
    config: SweepConfig,
    writer: RunWriter | None,
) -> None:
    """One point in one round: check it the first time, measure, write what is final."""
    state = states.get(point)
    if state is not None and state.row["check"] == "fail":
        return
    bound, row = bind(point, world)
    if state is None:
        state = states[point] = PointState({**row, "check": "pass"})
        if not check(bound, world):
            state.row["check"] = "fail"
            if writer:
                writer.results.append([_clean(state.row)])
            return
        state.row["temp_mem_bytes"] = _peak_over_ranks(
            temporary_bytes(bound.run, world.device), world
        )
    for tensor in bound.inputs:  # benign values for timing: in-place sums must not overflow
        tensor.zero_()
    measurement = measure(bound.run, world, config.timing, iters=state.iters)
    state.iters = measurement.iters
    first = sum(len(m.samples) for m in state.rounds)
    state.rounds.append(measurement)
    if writer:
        key = {column: row[column] for column in KEY_COLUMNS}
        samples, rank_samples = sample_rows(key, measurement, round_, first)
        writer.samples.append(samples)
        writer.rank_samples.append(rank_samples)
        if len(state.rounds) == config.rounds:
            bus_factor = REGISTRY[point.collective].bus_factor(point.tp)
            writer.results.append([_clean(state.final_row(bus_factor))])


def _peak_over_ranks(nbytes: int | None, world: World) -> float:
    """The largest of every rank's figure; NaN where the device reports none (CPU)."""
    if nbytes is None:
        return math.nan
    return float(world.gather_floats([float(nbytes)]).max())


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """NaN becomes an empty cell: a figure that could not be computed is not invented."""
    return {k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
