"""Drives a sweep on every rank: for each point, bind buffers, check, time, record.

Every rank walks the same plan in the same order. Decisions that could differ between
ranks (a check verdict, when to stop sampling, whether a point fits in memory, whether
to stop for a signal, whether the output is writable) are taken together over the
control group, so no rank is ever left waiting in a collective. Only rank 0 prints
and writes.

Exit codes: 0 done; 1 a point failed its check; 2 bad input; 3 incomplete (a peer
died or hung); 130 interrupted by a signal. After 3 or 130, every finished point and
every finished round is on disk and `sweep --resume DIR` measures the rest.
"""

from __future__ import annotations

import math
import os
import re
import resource
import sys
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
from commbench.buffers import Arena, return_freed_memory
from commbench.config import SweepConfig, check_backend
from commbench.errors import UsageError
from commbench.faults import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    RunInterrupted,
    StopRequest,
    Watchdog,
)
from commbench.groups import World, choose_backend, close_world, group_ranks, init_world
from commbench.launch import world_size_from_env
from commbench.nccl import verify_preloaded
from commbench.oom import PointSkipped, agree_or_skip, is_out_of_memory
from commbench.ops import REGISTRY, Footprint, bind, footprint
from commbench.ops.base import Bound
from commbench.phases import PhaseClock, render_phases
from commbench.plan import build_plan, round_order
from commbench.point import Point
from commbench.progress import RunProgress, read_meta, recover, resume_mismatch, row_key
from commbench.results import KEY_COLUMNS, RunWriter, default_run_dir
from commbench.stats import ci_ranks_upto, summarize
from commbench.timing import (
    EAGER,
    DeviceMemory,
    Measurement,
    cuda_graphs,
    make_timer,
    measure,
)

EXIT_CHECK_FAILED = 1


def prepare_check(bound: Bound, memory: Arena | None = None) -> torch.Tensor:
    """Everything the check allocates before its collective: the pattern in the inputs,
    the expected output (in `memory`, reused from point to point: a fresh allocation's
    first touch costs more than computing it on CPU), and room for the backend's flat
    buffer (allocated and freed again: the caching allocator keeps the block for the
    collective to reuse)."""
    memory = memory or Arena(bound.output.device)
    output = bound.output
    memory.reserve(output.numel() * output.element_size())
    memory.reset()
    bound.fill()
    expected = bound.expected(memory.empty(tuple(output.shape), output.dtype))
    if bound.hidden_bytes:
        room = torch.empty(bound.hidden_bytes, dtype=torch.uint8, device=output.device)
        del room
    return expected


def same_bits(output: torch.Tensor, expected: torch.Tensor) -> bool:
    """Bit for bit, compared as integers of the same width (as 8-byte words where both are
    contiguous): a float comparison would take -0.0 for 0.0 and never match a NaN."""
    if output.shape != expected.shape or output.dtype != expected.dtype:
        return False
    if all(_words(tensor) for tensor in (output, expected)):
        return torch.equal(output.view(-1).view(torch.int64), expected.view(-1).view(torch.int64))
    as_int = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    width = as_int[output.element_size()]
    return torch.equal(output.view(width), expected.view(width))


def _words(tensor: torch.Tensor) -> bool:
    """Whether `tensor` can be read as 8-byte words: contiguous, aligned, a whole number."""
    start = tensor.storage_offset() * tensor.element_size()
    return tensor.is_contiguous() and start % 8 == 0 and tensor.nbytes % 8 == 0


def check(bound: Bound, world: World, expected: torch.Tensor | None = None) -> bool:
    """Run once on the check pattern and compare bit for bit, agreed over all ranks.
    `expected` is `prepare_check`'s, when the caller has it (and has filled the inputs)."""
    return timed_check(bound, world, expected)[0]


def timed_check(
    bound: Bound, world: World, expected: torch.Tensor | None = None
) -> tuple[bool, float]:
    """`check`'s verdict, and the seconds its operation took on the fastest rank (the
    others' include waiting for it): that operation is the warm-up's first.

    An operation this torch's backend lacks (gloo's list reduce_scatter before torch 2.8:
    "ProcessGroupGloo does not support reduce_scatter") is refused on every rank before
    anything is sent: PointSkipped, with the backend's words, on every rank. The verdict,
    the refusal and the time travel in one gather of three numbers; the words only when
    refused.
    """
    if expected is None:
        expected = prepare_check(bound)
    problem = None
    timer = make_timer(bound.output.device)
    timer.start()
    try:
        bound.run()
    except (RuntimeError, NotImplementedError) as err:  # refused before communicating
        if "does not support" not in str(err):
            raise
        problem = f"skipped: {backend_message(err)} (torch {torch.__version__})"
    seconds = timer.stop()
    passed = problem is None and same_bits(bound.output, expected)
    every = world.gather_floats([problem is not None, passed, seconds])
    if every[:, 0].max() > 0:
        raise PointSkipped(next(p for p in world.gather_objects(problem) if p))
    return bool(every[:, 1].min() > 0), float(every[:, 2].min())


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


def backend_message(err: RuntimeError) -> str:
    """The first line of a backend's error, without gloo's [source/file.cc:123] prefix."""
    return re.sub(r"^\[[^\]]*\]\s*", "", str(err).splitlines()[0])


def _is_communication_failure(err: RuntimeError) -> bool:
    """A peer died or hung: NCCL raises DistError, gloo a RuntimeError from its transport."""
    return isinstance(err, torch.distributed.DistError) or "gloo" in str(err)


def _recorded_state(progress: RunProgress, key: tuple[str, ...], rounds: int) -> PointState:
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


def check_resumable(
    path: Path,
    config: SweepConfig,
    world_size: int,
    backend: str,
    versions: dict[str, Any] | None = None,
) -> None:
    """Refuse to resume `path` with another config, world, backend or software stack.

    `versions`: what the workers will record, where that is not this process's own (with
    `--nccl-lib` only the workers have the library preloaded)."""
    current = {
        "config": config.model_dump(),
        "config_hash": config.config_hash(),
        "world_size": world_size,
        "backend": backend,
        "versions": envinfo.collect_versions() if versions is None else versions,
    }
    if problem := resume_mismatch(read_meta(path), current):
        raise UsageError(f"resume: {str(path)!r}: {problem}")


def resident_bytes() -> float:
    """This process's resident memory now (Linux); NaN where /proc is not there."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return math.nan
    return float(pages * os.sysconf("SC_PAGE_SIZE"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """NaN becomes an empty cell: a figure that could not be computed is not invented."""
    return {k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


class Sweep:
    """One rank's sweep: its states, its buffers, and (rank 0) its run directory."""

    def __init__(
        self, world: World, config: SweepConfig, plan: list[Point], console: Console
    ) -> None:
        self.world = world
        self.config = config
        self.plan = plan
        self.console = console
        self.arena = Arena(world.device)
        self.expected = Arena(world.device)  # the check's expected outputs, point after point
        self.memory = DeviceMemory.of(world.device)
        self.clock = PhaseClock()
        self.rss_start = resident_bytes()
        self.states: dict[Point, PointState] = {}
        self.footprints: dict[Point, Footprint] = {}  # per point, on this rank
        self.writer: RunWriter | None = None
        self.meta: dict[str, Any] = {}
        self.where = "start-up"
        self.stop = StopRequest()
        self.watchdog = Watchdog(config.timeout, self._expired)
        world.heartbeat = self.watchdog.beat

    def run(self, resume: bool, force: bool) -> int:
        with self.watchdog, self.stop:
            try:
                progress = self._open_output(resume, force)
                self._start(progress)
                self._loop()
            except RunInterrupted:
                self._say_stopped("interrupted by a signal")
                return EXIT_INTERRUPTED
            except RuntimeError as err:
                if not _is_communication_failure(err):
                    raise
                reason = f"{self.where}: {backend_message(err)}"
                print(f"commbench: error: rank {self.world.rank}: {reason}", file=sys.stderr)
                self._say_stopped(f"a collective failed at {reason}")
                return EXIT_INCOMPLETE
        return self._finish()

    def _open_output(self, resume: bool, force: bool) -> RunProgress | None:
        """Rank 0 creates (or, resuming, checks and repairs) the run directory; every rank
        learns the outcome, and that all ranks run the same configuration."""
        error, progress = None, None
        if self.world.rank == 0:
            try:
                progress = self._open_on_rank0(resume, force)
            except UsageError as err:
                error = str(err)
        hashes = self.world.gather_objects(self.config.config_hash())
        error, progress = self.world.from_rank0((error, progress))
        if error:
            raise UsageError(error)
        if len(set(hashes)) > 1:
            raise UsageError(f"config: ranks were given different configurations: {hashes}")
        return progress

    def _open_on_rank0(self, resume: bool, force: bool) -> RunProgress | None:
        config = self.config
        path = Path(config.out) if config.out else default_run_dir(config.label)
        if not resume:
            self.writer = RunWriter.create(path, force)
            return None
        check_resumable(path, config, self.world.size, self.world.backend)
        progress = recover(path)
        self.writer = RunWriter(path)
        return progress

    def _start(self, progress: RunProgress | None) -> None:
        meta = _meta(self.world, self.config, self.plan, _now())
        if progress is not None:
            resumed = [*progress.meta.get("resumed", []), meta["started"]]
            meta.update(started=progress.meta["started"], resumed=resumed)
            for point in self.plan:
                key = row_key(fixed_row(point, self.world, self.config))
                self.states[point] = _recorded_state(progress, key, self.config.rounds)
        for name, values in meta["ranks_disagree"].items():
            self.console.print(f"[yellow]warning: ranks disagree on {name}: {values}[/yellow]")
        self.meta = meta
        timing = self.config.timing
        ci_ranks_upto(max(timing.min_samples, timing.max_samples))  # scipy, before any point
        if self.writer:
            self.writer.write_meta(meta)  # a run that dies still says what it was
        self._reserve_largest()

    def _reserve_largest(self) -> None:
        """Size the buffers (and the check's expected values) once, for the largest point
        that may run. If that does not fit, each point reserves what it needs and the ones
        that do not fit are skipped."""
        limit = self.config.max_bytes or math.inf
        self.footprints = {p: footprint(p, self.world.split(p.tp)) for p in self.plan}
        sizes = [fp.total for fp in self.footprints.values()]
        if not self.world.all_true(min(sizes) <= limit):
            raise UsageError(
                f"max-bytes: {limit} is below every point (the smallest needs {min(sizes)}"
                " bytes per rank)"
            )
        fitting = [fp for fp in self.footprints.values() if fp.total <= limit]
        try:
            self.arena.reserve(max(fp.buffers for fp in fitting))
            self.expected.reserve(max(fp.output for fp in fitting))
        except RuntimeError as err:
            if not is_out_of_memory(err):
                raise

    def _loop(self) -> None:
        order = round_order(self.plan, self.config.rounds, self.config.seed)
        todo = [(r, p) for r, p in order if not self._done(p, r)]
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,  # no refresh thread competing with the timed loop for a core
            disable=self.world.rank != 0,
        )
        with bar:
            task = bar.add_task("sweep", total=len(order), completed=len(order) - len(todo))
            last_use = {point.tp: step for step, (_, point) in enumerate(todo)}
            for step, (round_, point) in enumerate(todo):
                self.where = f"{point.describe()} (round {round_ + 1})"
                self.watchdog.beat(self.where)
                with self.clock("steps"):
                    with self.clock("progress"):
                        bar.update(task, description=point.describe(), refresh=True)
                    self._step(point, round_)
                    with self.clock("bind"):
                        if last_use[point.tp] == step:  # every rank walks the same steps
                            self.world.release(point.tp)
                        return_freed_memory(self.world.device)
                    with self.clock("progress"):
                        bar.advance(task)

    def _done(self, point: Point, round_: int) -> bool:
        state = self.states.get(point)
        return state is not None and (state.final or round_ < len(state.rounds))

    def _bind(self, point: Point) -> tuple[Bound | None, str | None]:
        """The bound point, or why it cannot run on this rank (too big, out of memory)."""
        need = self.footprints[point]
        if self.config.max_bytes and need.total > self.config.max_bytes:
            hidden = f" ({need.hidden} of them the backend's flat copy)" if need.hidden else ""
            return None, f"skipped: needs {need.total} bytes per rank{hidden}, over --max-bytes"
        try:
            return bind(point, self.world.split(point.tp), self.arena, need.buffers), None
        except RuntimeError as err:
            if not is_out_of_memory(err):
                raise
            if self.world.device.type == "cuda":
                torch.cuda.empty_cache()
            return None, (
                f"skipped: out of memory on rank {self.world.rank} for {need.buffers} bytes"
            )

    def _step(self, point: Point, round_: int) -> None:
        """One point in one round: agree it can run, check it once, measure, write."""
        clock = self.clock
        row = fixed_row(point, self.world, self.config)
        with clock("bind"):
            bound, problem = self._bind(point)
        with clock("agree"):
            agreed = self.world.gather_floats([problem is None, self.stop.requested])
        if agreed[:, 1].max() > 0:
            raise RunInterrupted
        if agreed[:, 0].min() == 0:  # skipped on every rank, for the first reason given
            with clock("agree"):
                reason = next(p for p in self.world.gather_objects(problem) if p)
            self._finalize(point, PointState({**row, "check": "skipped", "note": reason}))
            return
        try:
            self._check_and_measure(point, round_, row, bound)
        except PointSkipped as skipped:
            self._finalize(point, PointState({**row, "check": "skipped", "note": str(skipped)}))

    def _check_and_measure(
        self, point: Point, round_: int, row: dict[str, Any], bound: Bound
    ) -> None:
        """The bound point's check (first time only), then one round of measurement. Each
        step that allocates is agreed on (commbench/oom.py): PointSkipped on every rank."""
        clock, world = self.clock, self.world
        state = self.states.setdefault(point, PointState())
        ran_s = None  # the check's operation, when it ran just now: the warm-up's first
        if not state.checked:
            state.checked = True
            state.row = {**row, **bound_row(bound), "check": "pass"}
            with clock("check"):
                expected = agree_or_skip(
                    world,
                    "the check's expected values",
                    lambda: prepare_check(bound, self.expected),
                )
                passed, ran_s = timed_check(bound, world, expected)
                del expected
            if not passed:
                state.row["check"] = "fail"
                if not bound.defect:
                    self._finalize(point, state)
                    return
                state.row["note"] = "; ".join(filter(None, (bound.note, bound.defect)))
            with clock("temp_mem"):
                state.row["temp_mem_bytes"] = self._temporary_bytes(bound)
        with clock("bind"):
            for tensor in bound.inputs:  # benign values: in-place sums must not overflow
                tensor.zero_()
        measurement = measure(
            bound.run,
            world,
            self.config.timing,
            iters=state.iters,
            batching=cuda_graphs(world.device) if self.config.cuda_graph else EAGER,
            clock=clock,
            ran_s=ran_s,
        )
        state.iters = measurement.iters
        first = sum(len(m.samples) for m in state.rounds)
        state.rounds.append(measurement)
        with clock("write"):
            if self.writer:
                self._write_round(row, measurement, round_, first)
            if len(state.rounds) == self.config.rounds:
                bus_factor = REGISTRY[point.collective].bus_factor(point.tp)
                self._finalize(point, state, state.final_row(bus_factor))

    def _temporary_bytes(self, bound: Bound) -> float:
        """The largest over ranks of what one operation allocates beyond its buffers; NaN,
        with nothing run, where the device's allocator reports nothing (CPU)."""
        if not self.memory.reports:
            return math.nan
        nbytes = agree_or_skip(
            self.world,
            "the temporary-memory probe",
            lambda: self.memory.temporary_bytes(bound.run),
        )
        return float(self.world.gather_floats([float(nbytes)]).max())

    def _write_round(
        self, row: dict[str, Any], measurement: Measurement, round_: int, first: int
    ) -> None:
        """The round's samples, then its record: a record means its samples are on disk."""
        key = {column: row[column] for column in KEY_COLUMNS}
        samples, rank_samples = sample_rows(key, measurement, round_, first)
        self.writer.samples.append(samples)
        self.writer.rank_samples.append(rank_samples)
        record = {
            **key,
            "round": round_,
            "iters": measurement.iters,
            "samples": len(measurement.samples),
            "stop": measurement.stop,
        }
        self.writer.rounds.append([record])

    def _finalize(self, point: Point, state: PointState, row: dict | None = None) -> None:
        """The point is done: its results row is written and it is never run again."""
        state.final = True
        self.states[point] = state
        if self.writer:
            self.writer.results.append([_clean(row or state.row)])

    def _memory(self) -> dict[str, list[float]]:
        """Every rank's memory: RSS once its groups existed, its peak and the growth between
        them, the arena, and on CUDA the allocator's peak (NaN elsewhere)."""
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # KiB on Linux
        every = self.world.gather_floats(
            [
                self.rss_start,
                peak,
                peak - self.rss_start,
                self.arena.capacity,
                self.memory.sweep_peak(),
            ]
        )
        names = ("rss_start_bytes", "rss_peak_bytes", "rss_growth_bytes", "arena_bytes")
        columns = dict(zip((*names, "device_peak_bytes"), every.T.tolist(), strict=True))
        return {
            name: [None if math.isnan(v) else v for v in values] for name, values in columns.items()
        }

    def _finish(self) -> int:
        failed = sum(state.row.get("check") == "fail" for state in self.states.values())
        memory = self._memory()
        if self.writer:
            apis: dict[str, set[str]] = {}
            for point, state in self.states.items():
                if state.row.get("api"):
                    name = f"{point.collective}.{point.variant}"
                    apis.setdefault(name, set()).add(state.row["api"])
            apis_used = {name: sorted(used) for name, used in sorted(apis.items())}
            phases = self.clock.report()
            self.writer.write_meta(
                {
                    **self.meta,
                    "apis": apis_used,
                    "phases": phases,
                    "memory": memory,
                    "finished": _now(),
                }
            )
            self.writer.close()
            from commbench.report import render_run

            render_run(self.writer.path, self.console)
            if self.config.profile_phases:
                render_phases(phases, self.console)
            if failed:
                self.console.print(
                    f"[red]{failed} point(s) failed the exact-output check: see their note[/red]"
                )
        return EXIT_CHECK_FAILED if failed else 0

    def _say_stopped(self, reason: str) -> None:
        """Rank 0 records why the run stopped and says what is kept and how to finish."""
        if not self.writer:
            return
        if self.meta:
            self.writer.write_meta({**self.meta, "stopped": {"at": _now(), "reason": reason}})
        points = sum(state.final for state in self.states.values())
        rounds = sum(len(state.rounds) for state in self.states.values())
        path = self.writer.path
        print(
            f"commbench: kept {points} of {len(self.plan)} finished points and"
            f" {rounds} of {len(self.plan) * self.config.rounds} measured rounds in {path};"
            f" to measure the rest, run the same command with --resume {path}",
            file=sys.stderr,
        )

    def _expired(self, where: str, idle_s: float) -> None:
        """The watchdog's last word, on its own thread: the main one is stuck."""
        print(
            f"commbench: error: rank {self.world.rank}: no collective completed for"
            f" {idle_s:.0f} s during {where}: a peer rank is hung or dead"
            f" (--timeout {self.config.timeout:g})",
            file=sys.stderr,
        )
        self._say_stopped(f"no progress for {idle_s:.0f} s at {where}")


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
        "layout": world.layout,
        "groups": {
            tp: group_ranks(world.size, tp, world.layout) for tp in sorted({p.tp for p in plan})
        },
        "config": config.model_dump(),
        "config_hash": config.config_hash(),
        "points": len(plan),
        "env": envinfo.collect_env(),
        "topology": envinfo.collect_topology() if world.rank == 0 else None,
        "host": envinfo.collect_host(),
        "started": started,
        "finished": None,
    }


def run_sweep(
    config: SweepConfig,
    console: Console | None = None,
    *,
    resume: bool = False,
    force: bool = False,
) -> int:
    """Run the whole sweep on this rank and return the exit code (see the module doc)."""
    plan = build_plan(config, world_size_from_env())  # bad input ends here, on every rank
    check_backend(config, choose_backend(config.backend))
    verify_preloaded(os.environ)  # --nccl-lib: the library loaded must be the one asked for
    try:
        world = init_world(config.backend, timeout_s=config.timeout, layout=config.group_layout)
    except RuntimeError as err:  # a peer never came: DistStoreError / DistNetworkError
        if not _is_communication_failure(err):
            raise
        print(
            f"commbench: error: rank {os.environ.get('RANK')}: could not join the world"
            f" within --timeout {config.timeout:g} s: {backend_message(err)}",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    code = None
    try:
        code = Sweep(world, config, plan, console or Console()).run(resume, force)
        return code
    finally:  # every rank still there settles its groups first; after a fault, none waits
        close_world(world if code in (0, EXIT_CHECK_FAILED) else None)
