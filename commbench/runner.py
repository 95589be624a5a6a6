"""Drives a sweep on every rank: for each point, bind buffers, check, time, record.

Every rank walks the same plan in the same order. Decisions that could differ between
ranks (a check verdict, when to stop sampling, whether the output is writable) are
taken together over the control group, so no rank is ever left waiting in a collective.
Only rank 0 prints and writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
from commbench.ops import REGISTRY
from commbench.plan import build_plan
from commbench.point import Point
from commbench.results import KEY_COLUMNS, RunWriter, default_run_dir
from commbench.stats import summarize
from commbench.timing import measure, synchronize


@dataclass(frozen=True)
class PointResult:
    row: dict[str, Any]
    samples_s: np.ndarray  # [n] per-operation seconds, max over ranks
    rank_samples_s: np.ndarray  # [n, world]


def check(bound, world: World) -> bool:
    """Run once on the check pattern and compare bit for bit, agreed over all ranks."""
    bound.fill()
    bound.run()
    synchronize(world.device)
    return world.all_true(torch.equal(bound.output, bound.expected()))


def measure_point(point: Point, world: World, config: SweepConfig) -> PointResult:
    collective = REGISTRY[point.collective]
    bound = collective.variants[point.variant](point, world.split(point.tp))
    row: dict[str, Any] = {
        **point.key(),
        "backend": world.backend,
        "padded_tokens": bound.padded_tokens,
        "bytes": collective.bytes(point),
        "api": bound.api,
        "note": bound.note,
    }
    if not check(bound, world):
        return PointResult({**row, "check": "fail"}, np.empty(0), np.empty((0, world.size)))
    for tensor in bound.inputs:  # benign values for timing: in-place sums must not overflow
        tensor.zero_()
    measurement = measure(bound.run, world, config.timing)
    summary = summarize(measurement.samples * 1e6)
    seconds = summary.median / 1e6
    algbw = row["bytes"] / seconds / 1e9
    row.update(
        time_us=summary.median,
        time_us_p10=summary.p10,
        time_us_p90=summary.p90,
        time_us_min=summary.min,
        time_us_mean=summary.mean,
        time_us_std=summary.std,
        ci_low_us=summary.ci_low,
        ci_high_us=summary.ci_high,
        cv=summary.cv,
        outliers=summary.outliers,
        samples=summary.samples,
        iters=measurement.iters,
        stop=measurement.stop,
        algbw_gbps=algbw,
        busbw_gbps=algbw * collective.bus_factor(point.tp),
        check="pass",
    )
    return PointResult(row, measurement.samples, measurement.rank_samples)


def _sample_rows(result: PointResult, key: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    samples = [
        {**key, "sample": i, "time_us": t * 1e6, "slowest_rank": int(np.argmax(ranks))}
        for i, (t, ranks) in enumerate(zip(result.samples_s, result.rank_samples_s, strict=True))
    ]
    rank_samples = [
        {**key, "sample": i, "rank": rank, "time_us": t * 1e6}
        for i, ranks in enumerate(result.rank_samples_s)
        for rank, t in enumerate(ranks)
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
    return {
        "label": config.label,
        "versions": envinfo.collect_versions(),
        "backend": world.backend,
        "world_size": world.size,
        "nodes": len(set(hostnames)),
        "hostnames": hostnames,
        "devices": [rank["device"] for rank in ranks],
        "config": config.model_dump(),
        "config_hash": config.config_hash(),
        "points": len(plan),
        "env": envinfo.collect_env(),
        "host": envinfo.collect_host(),
        "started": started,
        "finished": None,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_sweep(config: SweepConfig, console: Console | None = None) -> int:
    """Run the whole sweep on this rank. Returns the exit code (1: a check failed)."""
    plan = build_plan(config, world_size_from_env())  # bad input ends here, on every rank
    world = init_world(config.backend)
    try:
        return _run(world, config, plan, console or Console())
    finally:
        close_world()


def _run(world: World, config: SweepConfig, plan: list[Point], console: Console) -> int:
    writer = _open_output(world, config)
    meta = _meta(world, config, plan, _now())
    if writer:
        writer.write_meta(meta)  # a run that dies still says what it was
    apis: dict[str, str] = {}
    failed = 0
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
        task = progress.add_task("sweep", total=len(plan))
        for point in plan:
            progress.update(task, description=point.describe(), refresh=True)
            result = measure_point(point, world, config)
            failed += result.row["check"] == "fail"
            if writer:
                apis[f"{point.collective}.{point.variant}"] = result.row["api"]
                key = {column: result.row[column] for column in KEY_COLUMNS}
                samples, rank_samples = _sample_rows(result, key)
                writer.results.append([_clean(result.row)])
                writer.samples.append(samples)
                writer.rank_samples.append(rank_samples)
            progress.advance(task)
    if writer:
        writer.write_meta({**meta, "apis": apis, "finished": _now()})
        writer.close()
        from commbench.report import render_run

        render_run(writer.path, console)
        if failed:
            console.print(f"[red]{failed} point(s) failed the exact-output check[/red]")
    return 1 if failed else 0


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """NaN becomes an empty cell: a figure that could not be computed is not invented."""
    return {k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
