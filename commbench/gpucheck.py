"""`make gpu-check`: what only a GPU can show, checked on 1 to 8 CUDA GPUs in minutes.

Run it first on a GPU machine (README, "What was verified where"). It needs the torch
already installed and commbench's other dependencies, no network, no venv; the repo on
PYTHONPATH. Each check starts real commbench sweeps (or, for the device peak, uses the
allocator directly) and prints one table row: check, expected, measured, verdict.
Exit 0 only if every check passes; 1 if any fails or could not run; 2 without a GPU.

    PYTHONPATH=. python3 -m commbench.gpucheck [--nccl-lib /path/to/libnccl.so.2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from commbench.point import ELEMENT_SIZE

EXIT_FAILED = 1
EXIT_NO_GPU = 2
NO_GPU = "gpu-check: no CUDA GPU visible to this python's torch: nothing was verified"
MAX_RANKS = 8
DTYPES = tuple(ELEMENT_SIZE)
TOKENS = (1, 5, 8, 13)
VOCABS = (24, 25)  # even for every tp here, and odd for every tp above 1
HIDDEN = 24
CUDA_BLOCK = 512  # bytes: the caching allocator rounds every allocation up to this
TIMING = """[timing]
warmup = {warmup}
min_sample_ms = {min_sample_ms}
max_iters = {max_iters}
min_samples = {samples}
max_samples = {samples}
target_ci = 0.5
max_seconds = 30
"""
QUICK = {"warmup": 1, "min_sample_ms": 0.05, "max_iters": 2, "samples": 2}
CAREFUL = {"warmup": 5, "min_sample_ms": 20.0, "max_iters": 1000, "samples": 15}
WITHIN = 0.03  # commbench's median against a bare CUDA-event loop
LARGE = (8192, 8192)  # tokens x hidden in bf16: a 128 MiB all_reduce
STOP_TIMEOUT = 20  # seconds: --timeout of the run whose rank is stopped


@dataclass(frozen=True)
class Check:
    name: str
    expected: str
    measured: str
    passed: bool | None  # None: could not run here

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "NOT RUN"}[self.passed]


def render(checks: list[Check]) -> str:
    """The table: one row per check, columns padded to their widest cell."""
    rows = [("check", "expected", "measured", "verdict")]
    rows += [(c.name, c.expected, c.measured, c.verdict) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    rows.insert(1, tuple("-" * width for width in widths))
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def exit_code(checks: list[Check]) -> int:
    """0 only when every check ran and passed."""
    return 0 if checks and all(c.passed for c in checks) else EXIT_FAILED


# --- judging results (pure: tested on CPU) -------------------------------------------


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


# --- running commbench ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Ranks:
    """Ranks started the way srun does (no agent): each its own environment."""

    procs: list[subprocess.Popen]
    logs: Path

    def wait(self, timeout: float) -> list[int | None]:
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return codes

    def stderr(self, rank: int) -> str:
        return (self.logs / f"rank{rank}.err").read_text(errors="replace")


class Runner:
    """Starts commbench sweeps in `work` on this machine's GPUs."""

    def __init__(self, work: Path, repo: Path) -> None:
        self.work = work
        path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "PYTHONPATH": path}
        self.count = 0

    def config(self, body: str, timing: dict) -> Path:
        self.count += 1
        path = self.work / f"config-{self.count}.toml"
        path.write_text(body + "\n" + TIMING.format(**timing))
        return path

    def start(self, ranks: int, args: list[str], shared: bool = False) -> tuple[Ranks, Path]:
        """`ranks` ranks of `commbench sweep ARGS`; `shared`: all on GPU 0, each rank its
        own NCCL_HOSTID so NCCL treats them as separate hosts (socket transport)."""
        self.count += 1
        out = self.work / f"run-{self.count}"
        logs = self.work / f"logs-{self.count}"
        logs.mkdir()
        port = _free_port()
        procs = []
        for rank in range(ranks):
            env = {
                **self.env,
                "RANK": str(rank),
                "WORLD_SIZE": str(ranks),
                "LOCAL_RANK": str(rank),
                "LOCAL_WORLD_SIZE": str(ranks),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
            }
            if shared:
                env.update(
                    COMMBENCH_SHARE_GPU="1",
                    CUDA_VISIBLE_DEVICES=env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0],
                    NCCL_HOSTID=f"commbench-gpucheck-{rank}",
                    NCCL_P2P_DISABLE="1",
                    NCCL_SHM_DISABLE="1",
                    NCCL_IB_DISABLE="1",
                    NCCL_NET="Socket",
                )
            command = [sys.executable, "-m", "commbench", "sweep", "--out", str(out), *args]
            with (
                (logs / f"rank{rank}.out").open("w") as o,
                (logs / f"rank{rank}.err").open("w") as e,
            ):
                procs.append(subprocess.Popen(command, env=env, stdout=o, stderr=e))
        return Ranks(procs, logs), out

    def sweep(
        self, ranks: int, args: list[str], timeout: float, shared: bool = False
    ) -> tuple[list[int | None], Path, Ranks]:
        started, out = self.start(ranks, args, shared)
        return started.wait(timeout), out, started


def _results(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv", dtype={"note": str}).fillna({"note": ""})


def _why(codes: list[int | None], ranks: Ranks) -> str:
    last = ranks.stderr(0).strip().splitlines()[-1:] or [""]
    return f"exit codes {codes}: {last[0][:120]}"


# --- the checks ----------------------------------------------------------------------


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
        return [Check(name, expected, _why(codes, started), False)]
    results = _results(out)
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
        return Check(name, expected, _why(codes, started), False)
    outliers, total = first_sample_outliers(pd.read_csv(out / "samples.csv"))
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
        return Check(name, expected, _why(codes, started), False)
    ours = float(_results(out)["time_us"].iloc[0])
    bare = _bare_loop(run, ranks, run.work / f"bare-{run.count}.json")
    if bare is None:
        return Check(name, expected, "the bare loop did not finish", False)
    ratio = ours / bare
    return Check(
        name,
        expected,
        f"{ours:.1f} us vs {bare:.1f} us ({ratio - 1:+.1%})",
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
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(out)],
            env={
                **run.env,
                "RANK": str(rank),
                "WORLD_SIZE": str(ranks),
                "LOCAL_RANK": str(rank),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
            },
        )
        for rank in range(ranks)
    ]
    codes = Ranks(procs, run.work).wait(180)
    if codes != [0] * ranks or not out.exists():
        return None
    return float(json.loads(out.read_text()))


def check_device_peak() -> Check:
    """A 1 GiB allocation, freed, then a point's temporary-memory probe: the sweep's peak
    must still count the 1 GiB (the probe resets CUDA's own peak statistics)."""
    import torch

    from commbench.memory import DeviceMemory

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
    meta = json.loads((out / "meta.json").read_text()) if (out / "meta.json").exists() else {}
    hint = "--resume" in started.stderr(0)
    measured = f"exit {code}, stopped={'stopped' in meta}, hint={hint}"
    return Check(name, expected, measured, code == 3 and "stopped" in meta and hint)


NCCL_VERSION = """
import sys
from commbench.nccl import library_version
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
    versions = json.loads((out / "meta.json").read_text())["versions"]
    runtime = versions.get("nccl_runtime")
    return Check(
        name,
        f"{expected} ({wanted})",
        f"{runtime} from {versions.get('nccl_path')}",
        bool(wanted) and runtime == wanted,
    )


def gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_checks(
    gpus: int, nccl_lib: str | None, work: Path, say: Callable[[str], None]
) -> list[Check]:
    import torch

    repo = Path(__file__).resolve().parent.parent
    run = Runner(work, repo)
    ranks = min(gpus, MAX_RANKS)
    list_graphs = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 8)
    checks: list[Check] = []

    def add(found: Check | list[Check]) -> None:
        for check in found if isinstance(found, list) else [found]:
            checks.append(check)
            say(f"gpu-check: {check.name}: {check.verdict} ({check.measured})")

    add(check_device_peak())
    add(check_exact(run, ranks))
    shared_ok = None
    if gpus == 1:  # two ranks on the one GPU, for correctness only: does NCCL allow it?
        found = check_exact(run, 2, shared=True)
        add(found)
        shared_ok = found[0].passed
    add(check_graph_first_sample(run, ranks, list_graphs))
    add(check_against_bare_loop(run, ranks))
    if gpus >= 2 or shared_ok:
        add(check_stopped_rank(run, shared=gpus == 1))
    else:
        add(Check("SIGSTOPped rank", "exit 3, `stopped`", "needs two ranks: none here", None))
    add(check_nccl_lib(run, nccl_lib))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.splitlines()[0])
    parser.add_argument("--nccl-lib", help="a second libnccl.so.2 (from an nvidia-nccl wheel)")
    args = parser.parse_args(argv)
    gpus = gpu_count()
    if gpus == 0:
        print(NO_GPU, file=sys.stderr)
        return EXIT_NO_GPU
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="commbench-gpucheck-") as work:
        checks = run_checks(gpus, args.nccl_lib, Path(work), lambda line: print(line, flush=True))
    print()
    print(render(checks))
    print(f"\ngpu-check: {gpus} GPU(s), {time.monotonic() - started:.0f} s")
    return exit_code(checks)


if __name__ == "__main__":
    sys.exit(main())
