"""Drives a sweep on every rank: for each point, bind buffers, check, time, record.

Every rank walks the same plan in the same order. Decisions that could differ between
ranks (a check verdict, when to stop sampling, whether a point fits in memory, whether
to stop for a signal, whether the output is writable) are taken together over the
control group, so no rank is ever left waiting in a collective. Only rank 0 prints
and writes.

Exit codes: 0 done; 1 a point failed its check; 2 bad input; 3 incomplete (a peer
died or hung); 70 a bug (its traceback); 130 interrupted by a signal. After 3 or 130,
every finished point and every finished round is on disk and `sweep --resume DIR`
measures the rest; the rank then leaves at once, without tearing the world down, which
could wait for a peer that is gone (faults.leave_at_once).
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import torch
from rich.console import Console

from commbench.analysis.stats import ci_ranks_upto
from commbench.config.settings import SweepConfig
from commbench.console import make_console
from commbench.env.preload import verify_preloaded
from commbench.errors import ExitCode, UsageError
from commbench.ops import REGISTRY, Footprint, bind
from commbench.ops.arena import Arena, return_freed_memory
from commbench.ops.base import Bound
from commbench.point import Point
from commbench.rundir.resume import RunProgress, row_key
from commbench.sweep import run_meta
from commbench.sweep.agreement import PointSkipped, agree_or_skip, first_problem, is_out_of_memory
from commbench.sweep.backend import check_backend, choose_backend
from commbench.sweep.exact_check import check, prepare_check
from commbench.sweep.faults import (
    RunInterrupted,
    StopRequest,
    Watchdog,
    backend_message,
    hung_message,
    is_communication_failure,
    leave_at_once,
)
from commbench.sweep.launch import world_size_from_env
from commbench.sweep.memory import (
    DeviceMemory,
    MemoryBudget,
    memory_figures,
    resident_bytes,
    size_points,
    temporary_bytes,
)
from commbench.sweep.phases import PhaseClock
from commbench.sweep.plan import build_plan, round_order
from commbench.sweep.point_state import PointState, bound_row, fixed_row, recorded_state
from commbench.sweep.recorder import Recorder, ShowRun, open_recorder
from commbench.sweep.timing import EAGER, cuda_graphs, measure
from commbench.sweep.world import World, close_world, init_world
from commbench.units import format_size


class Sweep:
    """One rank's sweep: its states, its buffers, and its recorder (rank 0's writes)."""

    def __init__(
        self,
        world: World,
        config: SweepConfig,
        plan: list[Point],
        console: Console,
        show: ShowRun | None,
    ) -> None:
        self.world = world
        self.config = config
        self.plan = plan
        self.console = console
        self.show = show
        self.arena = Arena(world.device)
        self.expected = Arena(world.device)  # the check's expected outputs, point after point
        self.memory = DeviceMemory.of(world.device)
        self.clock = PhaseClock()
        self.rss_start = resident_bytes()
        self.states: dict[Point, PointState] = {}
        self.footprints: dict[Point, Footprint] = {}  # per point, on this rank
        self.budget = MemoryBudget(math.inf, 1, "memory")  # what this rank can have
        self.recorder = Recorder()  # rank 0's RunRecorder once the output is open
        self.meta: dict[str, Any] = {}
        self.where = "start-up"
        self.stop = StopRequest()
        self.watchdog = Watchdog(config.timeout, self._expired)
        world.heartbeat = self.watchdog.beat

    def run(self, resume: bool, force: bool) -> int:
        with self.watchdog, self.stop:
            try:
                self._size_points()  # before anything is written or allocated
                self.recorder, progress = open_recorder(self.world, self.config, resume, force)
                self._start(progress)
                self._loop()
            except RunInterrupted:
                self._say_stopped("interrupted by a signal")
                return ExitCode.INTERRUPTED
            except UsageError:
                raise
            except Exception as err:
                if isinstance(err, RuntimeError) and is_communication_failure(err):
                    reason = f"{self.where}: {backend_message(err)}"
                    print(f"commbench: error: rank {self.world.rank}: {reason}", file=sys.stderr)
                    self._say_stopped(f"a collective failed at {reason}")
                    return ExitCode.INCOMPLETE
                # a bug: the run records where; the command line says the rest (exit 70)
                self._say_stopped(f"an internal error at {self.where}: {type(err).__name__}")
                raise
        return self._finish()

    def _start(self, progress: RunProgress | None) -> None:
        meta = run_meta.collect_run(self.world, self.config, self.plan)
        if progress is not None:
            resumed = [*progress.meta.resumed, meta["started"]]
            meta.update(started=progress.meta.started, resumed=resumed)
            for point in self.plan:
                key = row_key(fixed_row(point, self.world, self.config))
                self.states[point] = recorded_state(progress, key, self.config.rounds)
        for name, values in meta["ranks_disagree"].items():
            self.console.print(f"[yellow]warning: ranks disagree on {name}: {values}[/yellow]")
        self.meta = meta
        timing = self.config.timing
        ci_ranks_upto(max(timing.min_samples, timing.max_samples))  # computed before any point
        self.recorder.write_meta(meta)  # a run that dies still says what it was
        self._reserve_largest()

    def _size_points(self) -> None:
        """Every point's bytes and this rank's memory, before anything is written or
        allocated (refused on every rank when no point fits); said if ranks crowd."""
        self.footprints, self.budget = size_points(self.world, self.plan, self.config.max_bytes)

    def _reserve_largest(self) -> None:
        """Size the buffers (and the check's expected values) once, for the largest point
        that may run. If that does not fit, each point reserves what it needs and the ones
        that do not fit are skipped."""
        limit = self.config.max_bytes or math.inf
        fitting = [
            fp
            for p, fp in self.footprints.items()
            if fp.total <= limit and self.budget.refuses(p, fp) is None
        ]
        if not fitting:  # none fits on this rank: each point is skipped on its own
            return
        try:
            self.arena.reserve(max(fp.buffers for fp in fitting))
            self.expected.reserve(max(fp.output for fp in fitting))
        except RuntimeError as err:
            if not is_out_of_memory(err):
                raise

    def _loop(self) -> None:
        order = round_order(self.plan, self.config.rounds, self.config.seed)
        todo = [(r, p) for r, p in order if not self._done(p, r)]
        bar = self.recorder.progress_bar(self.console)
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
            copy = f" ({format_size(need.hidden)} of it the backend's flat copy)"
            needs = f"{format_size(need.total)} per rank{copy if need.hidden else ''}"
            return None, f"skipped: needs {needs}, over --max-bytes"
        if problem := self.budget.refuses(point, need):
            return None, problem
        try:
            return bind(point, self.world.split(point.tp), self.arena, need.buffers), None
        except RuntimeError as err:
            if not is_out_of_memory(err):
                raise
            if self.world.device.type == "cuda":
                torch.cuda.empty_cache()
            return None, (
                f"skipped: out of memory on rank {self.world.rank} for {format_size(need.buffers)}"
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
                reason = first_problem(self.world, problem)
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
        step that allocates is agreed on (commbench/sweep/agreement.py): PointSkipped on
        every rank."""
        clock, world = self.clock, self.world
        state = self.states.setdefault(point, PointState())
        ran_first = False  # the check's operation ran just now: the point's first
        if not state.checked:
            state.checked = True
            state.row = {**row, **bound_row(bound), "check": "pass"}
            with clock("check"):
                expected = agree_or_skip(
                    world,
                    "the check's expected values",
                    lambda: prepare_check(bound, self.expected),
                )
                passed, ran_first = check(bound, world, expected), True
                del expected
            if not passed:
                state.row["check"] = "fail"
                if not bound.defect:
                    self._finalize(point, state)
                    return
                state.row["note"] = "; ".join(filter(None, (bound.note, bound.defect)))
            with clock("temp_mem"):
                state.row["temp_mem_bytes"] = temporary_bytes(world, self.memory, bound.run)
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
            ran_first=ran_first,
        )
        state.iters = measurement.iters
        first = sum(len(m.samples) for m in state.rounds)
        state.rounds.append(measurement)
        with clock("write"):
            self.recorder.round(row, measurement, round_, first)
            if len(state.rounds) == self.config.rounds:
                bus_factor = REGISTRY[point.collective].bus_factor(point.tp)
                self._finalize(point, state, state.final_row(bus_factor))

    def _finalize(self, point: Point, state: PointState, row: dict | None = None) -> None:
        """The point is done: its results row is written and it is never run again."""
        state.final = True
        self.states[point] = state
        self.recorder.result(row or state.row)

    def _finish(self) -> int:
        failed = sum(state.row.get("check") == "fail" for state in self.states.values())
        memory = memory_figures(self.world, self.rss_start, self.arena.capacity, self.memory)
        meta = {
            **self.meta,
            "apis": run_meta.collect_apis({p: state.row for p, state in self.states.items()}),
            "phases": self.clock.report(),
            "memory": memory,
            "finished": run_meta.now(),
        }
        self.recorder.finish(meta, self.show, self.console)
        return ExitCode.FAILED if failed else 0

    def _say_stopped(self, reason: str) -> None:
        """Rank 0 records why the run stopped and says what is kept and how to finish."""
        points = sum(state.final for state in self.states.values())
        rounds = sum(len(state.rounds) for state in self.states.values())
        self.recorder.stopped(
            self.meta,
            {"at": run_meta.now(), "reason": reason},
            (points, len(self.plan)),
            (rounds, len(self.plan) * self.config.rounds),
        )

    def _expired(self, where: str, idle_s: float) -> None:
        """The watchdog's last word, on its own thread: the main one is stuck."""
        print(hung_message(self.world.rank, idle_s, where, self.config.timeout), file=sys.stderr)
        self._say_stopped(f"no progress for {idle_s:.0f} s at {where}")


def run_sweep(
    config: SweepConfig,
    console: Console | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    show: ShowRun | None = None,
) -> int:
    """Run the whole sweep on this rank and return the exit code (see the module doc).
    `show`: what shows the finished run on rank 0 (the summary), if anything."""
    plan = build_plan(config, world_size_from_env())  # bad input ends here, on every rank
    check_backend(config, choose_backend(config.backend))
    verify_preloaded(os.environ)  # --nccl-lib: the library loaded must be the one asked for
    try:
        world = init_world(config.backend, timeout_s=config.timeout, layout=config.group_layout)
    except RuntimeError as err:  # a peer never came: DistStoreError / DistNetworkError
        if not is_communication_failure(err):
            raise
        print(
            f"commbench: error: rank {os.environ.get('RANK')}: could not join the world"
            f" within --timeout {config.timeout:g} s: {backend_message(err)}",
            file=sys.stderr,
        )
        return ExitCode.INCOMPLETE
    try:
        code = Sweep(world, config, plan, console or make_console(), show).run(resume, force)
    except UsageError:  # refused on every rank together: the world is whole
        close_world(world)
        raise
    if code not in (ExitCode.OK, ExitCode.FAILED):  # a fault or a signal: a peer may be gone
        leave_at_once(code)
    close_world(world)  # every rank is here: the groups settle, then go
    return code
