"""gpu-check's steps, each with its own time limit, and what each of its checks proves and
what it cannot on this many GPUs (the table printed at the end).

A GPU machine lent for a short while has minutes, not hours: every step is killed at its limit (its
checks then FAIL, their logs kept), the limits add up to under WHOLE_RUN_S, and the whole
run stops starting steps once WHOLE_RUN_S is spent (those are NOT RUN). One hang cannot use
up the time a GPU machine is lent for.
"""

from __future__ import annotations

from dataclasses import dataclass

WHOLE_RUN_S = 450  # seconds: under 8 minutes, all steps together

# step -> its time limit in seconds (starting Python and CUDA torch in each rank included)
LIMITS = {
    "exact": 120,
    "out of memory": 40,
    "graph replay": 45,
    "cuda-graph sweep": 50,
    "gpu-bound timing": 70,
    "stopped rank": 60,
    "nccl-lib": 45,
}


@dataclass(frozen=True)
class About:
    step: str  # the step whose run the check judges
    proves: str
    one_gpu_cannot: str  # what it cannot show with every rank on one GPU
    cannot: str  # what it cannot show on this machine's GPUs, however many


ABOUT = {
    "exact rows": About(
        "exact",
        "every collective and variant (all_to_all and all_to_all_combine included), dtype,"
        " T in {1,5,8}, tp and even/odd vocab is exact on NCCL, or fails where predicted",
        "traffic between GPUs: two ranks share one GPU over NCCL's socket transport",
        "other GPUs' topologies and NCCL's algorithms at sizes above a few KiB",
    ),
    "temp_mem_bytes": About(
        "exact",
        "a list form's temporary bytes are its flat buffer, a tensor form's 0 (allocator)",
        "",  # each rank has its own allocator, shared GPU or not
        "the routed collectives' temporary bytes (not predicted)",
    ),
    "out-of-memory point": About(
        "out of memory",
        "a point no GPU holds (256 GiB) is skipped on every rank with its reason, one that"
        " fits passes, run exit 0",
        "",
        "running out of memory while NCCL sets up a communicator (not agreed on)",
    ),
    "graph replay output": About(
        "graph replay",
        "each collective and variant captured by commbench's capture, replayed, writes"
        " the exact output (a graph that moves nothing leaves zeros: FAIL)",
        "data moving between GPUs inside a graph",
        "graphs of K > 1 operations (the sweep's) beyond one replay",
    ),
    "--cuda-graph sweep": About(
        "cuda-graph sweep",
        "a --cuda-graph sweep (capture, calibration from a replay, resync) ends, rows exact",
        "",
        "that replays are timed right: see the first-sample row",
    ),
    "first --cuda-graph sample": About(
        "cuda-graph sweep",
        "each round's first replayed sample is not an outlier (upload, resync done before)",
        "anything: two ranks on one GPU time each other (N/A)",
        "",
    ),
    "median vs bare loop": About(
        "gpu-bound timing",
        "commbench's median of a 128 MiB out-of-place all_gather is within 3% of a bare"
        " CUDA-event loop of the same call (nccl-tests' way)",
        "collective bandwidth: on one rank the all_gather is a device copy",
        "other sizes than 128 MiB",
    ),
    "device_peak_bytes": About(
        "gpu-bound timing",
        "meta.json's device_peak_bytes of a real sweep counts its 128 MiB buffers",
        "",
        "NCCL's own device memory (outside the caching allocator)",
    ),
    "stopped rank": About(
        "stopped rank",
        "a SIGSTOPped rank ends the run with exit 3, `stopped` in meta.json and the --resume"
        " hint, by commbench's watchdog or gloo's control timeout, before NCCL's watchdog",
        "a peer on another GPU: both ranks share one (sockets)",
        "a peer on another node; a hang inside NCCL's teardown is only bounded, by the limit",
    ),
    "--nccl-lib": About(
        "nccl-lib",
        "sweep --nccl-lib binds the given library: NCCL_DEBUG=VERSION and meta.json name it",
        "",
        "another NCCL version, unless NCCL_LIB gives one: a copy of the bound library proves"
        " the binding only",
    ),
}


def cannot(check: str, gpus: int) -> str:
    """What `check` cannot show on `gpus` GPUs."""
    about = ABOUT[check]
    parts = [about.one_gpu_cannot] if gpus == 1 else []
    return "; ".join(part for part in (*parts, about.cannot) if part) or "-"


def checks_of(step: str) -> list[str]:
    return [name for name, about in ABOUT.items() if about.step == step]
