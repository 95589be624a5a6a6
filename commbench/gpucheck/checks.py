"""Each of gpu-check's checks: real commbench sweeps (or the allocator itself), judged."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from commbench.errors import UsageError
from commbench.gpucheck.judge import first_sample_outliers, judge_exact, judge_temp_mem
from commbench.gpucheck.ranks import Runner
from commbench.gpucheck.verdict import Check
from commbench.output.units import format_time
from commbench.point import ELEMENT_SIZE
from commbench.rundir.reader import Run, read_meta, read_run

DTYPES = tuple(ELEMENT_SIZE)
TOKENS = (1, 5, 8, 13)
VOCABS = (24, 25)  # even for every tp here, and odd for every tp above 1
HIDDEN = 24
QUICK = {"warmup": 1, "min_sample_ms": 0.05, "max_iters": 2, "samples": 2}
CAREFUL = {"warmup": 5, "min_sample_ms": 20.0, "max_iters": 1000, "samples": 15}
WITHIN = 0.03  # commbench's median against a bare CUDA-event loop
LARGE = (8192, 8192)  # tokens x hidden in bf16: a 128 MiB all_reduce
STOP_TIMEOUT = 20  # seconds: --timeout of the run whose rank is stopped


def _read(out: Path) -> Run | str:
    """The run in `out` through commbench's one reader, or why it cannot be read."""
    try:
        return read_run(out)
    except UsageError as err:
        return str(err)


def check_exact(run: Runner, ranks: int, shared: bool = False) -> list[Check]:
    """Every collective, variant, dtype, T in {1,5,8,13}, every tp, even and odd vocab;
    then the temporary memory of the same rows."""
    tps = [tp for tp in range(1, ranks + 1) if ranks % tp == 0]
    body = (
        f"tokens = {list(TOKENS)}\nhidden = [{HIDDEN}]\ndtypes = {list(DTYPES)}\ntp = {tps}\n"
        f'collectives = ["all_gather", "reduce_scatter", "all_reduce", "logits_gather"]\n'
        f'vocab = {list(VOCABS)}\nvariants = ["list", "tensor"]\nbackend = "nccl"\nrounds = 1\n'
    )
    label = f"{ranks} rank(s){' sharing GPU 0' if shared else ''}"
    codes, out, started = run.sweep(ranks, ["--config", str(run.config(body, QUICK))], 240, shared)
    name = f"exact rows, {label}"
    expected = "all exact; logits list, odd V, T>1: fail (raw bytes)"
    if not (out / "results.csv").exists() or None in codes or set(codes) - {0, 1}:
        return [Check(name, expected, started.why(codes), False)]
    read = _read(out)
    if isinstance(read, str):
        return [Check(name, expected, read, False)]
    results = read.results
    text, ok = judge_exact(results)
    checks = [Check(name, expected, text, ok)]
    if not shared:
        text, ok = judge_temp_mem(results)
        checks.append(Check("temp_mem_bytes", "list: its flat buffer; tensor: 0", text, ok))
    return checks


def check_graph_first_sample(run: Runner, ranks: int, list_forms: bool) -> Check:
    variants = '["list", "tensor"]' if list_forms else '["tensor"]'
    body = (
        'tokens = [8, 1024]\nhidden = [4096]\ndtypes = ["bfloat16"]\n'
        f'collectives = ["all_gather", "all_reduce"]\nvariants = {variants}\n'
        f'backend = "nccl"\nrounds = 2\ntp = [{ranks}]\n'
    )
    config = run.config(body, {**QUICK, "samples": 10, "max_iters": 50, "min_sample_ms": 1})
    codes, out, started = run.sweep(ranks, ["--config", str(config), "--cuda-graph"], 180)
    name = "--cuda-graph first sample"
    expected = "not above the rest's Tukey fence"
    if codes != [0] * ranks:
        return Check(name, expected, started.why(codes), False)
    read = _read(out)
    if isinstance(read, str):
        return Check(name, expected, read, False)
    outliers, total = first_sample_outliers(read.samples)
    return Check(
        name, expected, f"{outliers} of {total} rounds an outlier", outliers == 0 and total > 0
    )


def check_against_bare_loop(run: Runner, ranks: int) -> Check:
    tokens, hidden = LARGE
    body = (
        f'tokens = [{tokens}]\nhidden = [{hidden}]\ndtypes = ["bfloat16"]\n'
        f'collectives = ["all_reduce"]\nvariants = ["tensor"]\nbackend = "nccl"\n'
        f"rounds = 1\ntp = [{ranks}]\n"
    )
    codes, out, started = run.sweep(ranks, ["--config", str(run.config(body, CAREFUL))], 180)
    name = f"median vs bare CUDA-event loop, {tokens * hidden * 2 >> 20} MiB all_reduce"
    expected = f"within {WITHIN:.0%}"
    if codes != [0] * ranks:
        return Check(name, expected, started.why(codes), False)
    read = _read(out)
    if isinstance(read, str):
        return Check(name, expected, read, False)
    ours = float(read.results["time_us"].iloc[0])
    bare = _bare_loop(run, ranks, run.work / f"bare-{run.count}.json")
    if bare is None:
        return Check(name, expected, "the bare loop did not finish", False)
    ratio = ours / bare
    return Check(
        name,
        expected,
        f"{format_time(ours)} vs {format_time(bare)} ({ratio - 1:+.1%})",
        abs(ratio - 1) <= WITHIN,
    )


BARE_LOOP = """
import json, os, statistics, sys, torch, torch.distributed as dist
rank = int(os.environ["RANK"])
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
dist.init_process_group("nccl")
x = torch.zeros({numel}, dtype=torch.bfloat16, device="cuda")
for _ in range(5):
    dist.all_reduce(x)
torch.cuda.synchronize()
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
iters, times = 20, []
for _ in range(15):
    dist.barrier()
    torch.cuda.synchronize()
    start.record()
    for _ in range(iters):
        dist.all_reduce(x)
    end.record()
    end.synchronize()
    t = torch.tensor([start.elapsed_time(end) * 1e3 / iters], device="cuda")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    times.append(t.item())
if rank == 0:
    json.dump(statistics.median(times), open(sys.argv[1], "w"))
dist.destroy_process_group()
"""


def _bare_loop(run: Runner, ranks: int, out: Path) -> float | None:
    """nccl-tests' way: K back-to-back all_reduces between two CUDA events, max over ranks."""
    script = run.work / "bare_loop.py"
    script.write_text(BARE_LOOP.format(numel=LARGE[0] * LARGE[1]))
    codes = run.script(ranks, script, [str(out)]).wait(180)
    if codes != [0] * ranks or not out.exists():
        return None
    return float(json.loads(out.read_text()))


def check_device_peak() -> Check:
    """A 1 GiB allocation, freed, then a point's temporary-memory probe: the sweep's peak
    must still count the 1 GiB (the probe resets CUDA's own peak statistics)."""
    import torch

    from commbench.sweep.memory import DeviceMemory

    device = torch.device("cuda", 0)
    memory = DeviceMemory.of(device)
    base = torch.cuda.memory_allocated(device)
    block = torch.empty(2**30, dtype=torch.uint8, device=device)
    del block
    small = torch.ones(1024, device=device)
    memory.temporary_bytes(lambda: small * 2)
    peak = memory.sweep_peak() - base
    torch.cuda.empty_cache()  # the sweeps that follow share this GPU
    return Check(
        "device_peak_bytes after a freed 1 GiB",
        ">= 1 GiB",
        f"{peak / 2**30:.3f} GiB",
        peak >= 2**30,
    )


def check_stopped_rank(run: Runner, shared: bool) -> Check:
    """Rank 1 SIGSTOPped mid-sweep: rank 0 must end with exit 3, `stopped` in meta.json and
    the --resume hint, before PyTorch's NCCL watchdog would abort it."""
    body = (
        'tokens = [8, 64, 512]\nhidden = [4096]\ndtypes = ["bfloat16"]\n'
        'collectives = ["all_gather", "all_reduce"]\nvariants = ["tensor"]\n'
        'backend = "nccl"\nrounds = 50\ntp = [2]\n'
    )
    config = run.config(body, {**QUICK, "samples": 5, "min_sample_ms": 1})
    args = ["--config", str(config), "--timeout", str(STOP_TIMEOUT)]
    started, out = run.start(2, args, shared)
    name = f"SIGSTOPped rank{' (shared GPU)' if shared else ''}"
    expected = "rank 0: exit 3, `stopped`, --resume hint"
    rounds = out / "rounds.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
        not rounds.exists() or len(rounds.read_text().splitlines()) < 3
    ):
        if any(p.poll() is not None for p in started.procs):
            break
        time.sleep(0.5)
    started.procs[1].send_signal(signal.SIGSTOP)
    try:
        code = started.procs[0].wait(STOP_TIMEOUT * 3)
    except subprocess.TimeoutExpired:
        code = None
    started.procs[1].kill()
    started.wait(10)
    stopped = _stopped(out)
    hint = "--resume" in started.stderr(0)
    measured = f"exit {code}, stopped={stopped}, hint={hint}"
    return Check(name, expected, measured, code == 3 and stopped and hint)


def _stopped(out: Path) -> bool:
    """Whether the run's meta.json says it stopped (False where it could not be read)."""
    try:
        return read_meta(out).stopped is not None
    except UsageError:
        return False


NCCL_VERSION = """
import sys
from commbench.env.nccl import library_version
print(library_version(sys.argv[1]))
"""


def check_nccl_lib(run: Runner, lib: str | None) -> Check:
    name, expected = "--nccl-lib", "meta nccl_runtime = the given library's version"
    if lib is None:
        return Check(name, expected, "no library given: make gpu-check NCCL_LIB=...", None)
    wanted = subprocess.run(
        [sys.executable, "-c", NCCL_VERSION, lib], env=run.env, capture_output=True, text=True
    ).stdout.strip()
    body = (
        'tokens = [8]\nhidden = [1024]\ndtypes = ["bfloat16"]\ncollectives = ["all_reduce"]\n'
        'variants = ["tensor"]\nbackend = "nccl"\nrounds = 1\n'
    )
    out = run.work / "nccl-lib"
    done = subprocess.run(
        [sys.executable, "-m", "commbench", "sweep", "--nproc", "1", "--nccl-lib", lib,
         "--config", str(run.config(body, QUICK)), "--out", str(out)],
        env=run.env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if done.returncode != 0:
        return Check(name, expected, f"exit {done.returncode}: {done.stderr[-120:]}", False)
    try:
        versions = read_meta(out).versions
    except UsageError as err:
        return Check(name, expected, str(err), False)
    return Check(
        name,
        f"{expected} ({wanted})",
        f"{versions.nccl_runtime} from {versions.nccl_path}",
        bool(wanted) and versions.nccl_runtime == wanted,
    )
