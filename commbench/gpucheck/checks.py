"""gpu-check's checks of what a sweep's files say: exact rows, the out-of-memory skip, graph
replays, the timing against a bare loop and the device peak. Each takes its step's time
limit and returns its rows; `backend` lets the tests run the same checks on gloo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from commbench.errors import UsageError
from commbench.gpucheck import sweeps
from commbench.gpucheck.judge import (
    exact_unless_scrambled,
    first_sample_outliers,
    judge_device_peak,
    judge_rows,
    judge_temp_mem,
)
from commbench.gpucheck.ranks import Ranks, Runner
from commbench.gpucheck.verdict import FAIL, NA, Check, judged
from commbench.rundir.reader import Run, read_run
from commbench.units import format_time

WITHIN = 0.03  # commbench's median against a bare CUDA-event loop
SHARED_TIMING = "two ranks on one GPU time each other: a timing verdict would judge that"


def finished(started: Ranks, out: Path, limit: float, codes_ok: set[int]) -> Run | str:
    """The run in `out`, whole, once its ranks have ended with codes in `codes_ok`; else
    why not. A run must be whole even when its exit code is allowed: exit 1 is a failed
    check's, and a process that dies some other way can end with it too."""
    codes = started.wait(limit)
    if None in codes:
        return f"{started.why(codes)}; {how_far(out)}"
    if set(codes) - codes_ok:
        return started.why(codes)
    try:
        run = read_run(out)
    except UsageError as err:
        return f"{err}; log {started.log(0)}"
    if run.incomplete or len(run.results) != run.meta.points:
        return f"{how_far(out)}, exit codes {codes}: not a whole run; log {started.log(0)}"
    return run


def how_far(out: Path) -> str:
    """How many of its points a run wrote before it ended or was killed."""
    try:
        run = read_run(out)
    except UsageError as err:
        return f"no rows to read ({err})"
    return f"{len(run.results)} of {run.meta.points} rows written"


def where(ranks: int, shared: bool) -> str:
    return f"{ranks} rank(s){' on one GPU' if shared else ''}"


def kept(check: Check, evidence: Path) -> Check:
    """`check`, naming where its evidence is kept when it failed."""
    if not check.failed:
        return check
    return Check(check.name, check.status, f"{check.measured}; kept in {evidence}")


def check_exact(
    run: Runner, ranks: int, shared: bool, limit: float, backend: str = "nccl"
) -> list[Check]:
    """The exact sweep: every row as predicted; then the temporary memory of its rows."""
    started, out = run.sweep(ranks, sweeps.exact(ranks, backend), [], shared)
    read = finished(started, out, limit, {0, 1})  # 1: the predicted failures
    if isinstance(read, str):
        return [Check("exact rows", FAIL, read), Check("temp_mem_bytes", FAIL, read)]
    text, ok = judge_rows(read.results, exact_unless_scrambled)
    checks = [kept(judged("exact rows", f"{where(ranks, shared)}: {text}", ok), out)]
    if backend != "nccl":
        return [*checks, Check("temp_mem_bytes", NA, f"{backend} has no device allocator")]
    return [*checks, kept(judged("temp_mem_bytes", *judge_temp_mem(read.results)), out)]


def check_huge(run: Runner, ranks: int, shared: bool, limit: float) -> list[Check]:
    """A point no GPU holds: skipped on every rank with its reason; the run ends 0."""
    started, out = run.sweep(ranks, sweeps.huge(ranks, "nccl"), [], shared)
    read = finished(started, out, limit, {0})
    if isinstance(read, str):
        return [Check("out-of-memory point", FAIL, read)]
    verdict = judge_rows(read.results, sweeps.huge_expected)
    return [kept(judged("out-of-memory point", *verdict), out)]


def check_graph_replay(
    run: Runner, ranks: int, shared: bool, limit: float, list_forms: bool, backend: str = "nccl"
) -> list[Check]:
    """Each point captured by commbench's own capture, replayed once on zeroed outputs."""
    config = run.config(sweeps.replayed(ranks, backend, list_forms))
    out = run.next("replay").with_suffix(".json")
    started = run.start(ranks, ["-m", "commbench.gpucheck.replay", str(config), str(out)], shared)
    codes = started.wait(limit)
    if codes != [0] * ranks or not out.exists():
        return [Check("graph replay output", FAIL, started.why(codes))]
    rows = pd.DataFrame(json.loads(out.read_text()))
    text, ok = judge_rows(rows, exact_unless_scrambled)
    forms = "" if list_forms else " (tensor forms only: this torch is older than 2.8)"
    measured = f"{where(ranks, shared)}: {text}{forms}"
    return [kept(judged("graph replay output", measured, ok), out)]


def check_graph_sweep(
    run: Runner, ranks: int, shared: bool, limit: float, list_forms: bool
) -> list[Check]:
    """A --cuda-graph sweep: it ends with every row exact, and (on a GPU per rank) the
    first sample of each round is not above the rest's Tukey fence."""
    started, out = run.sweep(ranks, sweeps.graphed(ranks, list_forms), ["--cuda-graph"], shared)
    read = finished(started, out, limit, {0})
    if isinstance(read, str):
        return [
            Check(name, FAIL, read) for name in ("--cuda-graph sweep", "first --cuda-graph sample")
        ]
    rows = judged("--cuda-graph sweep", *judge_rows(read.results, exact_unless_scrambled))
    checks = [kept(rows, out)]
    if shared:
        return [*checks, Check("first --cuda-graph sample", NA, SHARED_TIMING)]
    outliers, total = first_sample_outliers(read.samples)
    measured = f"{outliers} of {total} rounds' first sample an outlier"
    first = judged("first --cuda-graph sample", measured, outliers == 0 and total > 0)
    return [*checks, kept(first, out)]


BARE_LOOP = """
import json, os, statistics, sys, torch, torch.distributed as dist
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
dist.init_process_group("nccl")
ranks = dist.get_world_size()
out = torch.zeros({numel}, dtype=torch.bfloat16, device="cuda")
inp = torch.ones({numel} // ranks, dtype=torch.bfloat16, device="cuda")
for _ in range(5):
    dist.all_gather_into_tensor(out, inp)
torch.cuda.synchronize()
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
iters, times = 50, []
for _ in range(15):
    dist.barrier()
    torch.cuda.synchronize()
    start.record()
    for _ in range(iters):
        dist.all_gather_into_tensor(out, inp)
    end.record()
    end.synchronize()
    t = torch.tensor([start.elapsed_time(end) * 1e3 / iters], device="cuda")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    times.append(t.item())
if dist.get_rank() == 0:
    json.dump(statistics.median(times), open(sys.argv[1], "w"))
dist.destroy_process_group()
"""


def check_gpu_bound(run: Runner, ranks: int, limit: float) -> list[Check]:
    """commbench's median of the 128 MiB out-of-place all_gather against nccl-tests' way
    (K back-to-back calls between two CUDA events, the slowest rank's), one GPU per rank;
    and the run's device peak, which must hold its buffers."""
    deadline = time.monotonic() + limit
    names = ("median vs bare loop", "device_peak_bytes")
    started, out = run.sweep(ranks, sweeps.gpu_bound(ranks), [])
    read = finished(started, out, limit / 2, {0})
    if isinstance(read, str):
        return [Check(name, FAIL, read) for name in names]
    buffers = sweeps.LARGE_BYTES + sweeps.LARGE_BYTES // ranks  # its output and input
    peak = kept(judged("device_peak_bytes", *judge_device_peak(read.meta.memory, buffers)), out)
    ours = float(read.results["time_us"].iloc[0])
    script = run.next("bare_loop").with_suffix(".py")
    script.write_text(BARE_LOOP.format(numel=sweeps.LARGE_BYTES // 2))
    bare_out = run.next("bare").with_suffix(".json")
    bare = run.start(ranks, [str(script), str(bare_out)])
    codes = bare.wait(max(1.0, deadline - time.monotonic()))
    if codes != [0] * ranks or not bare_out.exists():
        return [Check(names[0], FAIL, f"the bare loop: {bare.why(codes)}"), peak]
    theirs = float(json.loads(bare_out.read_text()))
    ratio = ours / theirs
    measured = f"{format_time(ours)} vs {format_time(theirs)} ({ratio - 1:+.1%}), {ranks} rank(s)"
    return [kept(judged(names[0], measured, abs(ratio - 1) <= WITHIN), out.parent), peak]
