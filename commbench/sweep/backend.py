"""Which backend and which devices a sweep may use, decided before any worker starts."""

from __future__ import annotations

import os
import re
import socket

import torch
import torch.distributed as dist

from commbench.config.settings import SweepConfig
from commbench.errors import UsageError


def choose_backend(requested: str) -> str:
    """`auto` means NCCL when CUDA GPUs are visible, else gloo."""
    has_gpu = torch.cuda.is_available() and dist.is_nccl_available()
    if requested == "auto":
        return "nccl" if has_gpu else "gloo"
    if requested == "nccl" and not has_gpu:
        raise UsageError("backend: 'nccl' needs CUDA GPUs and an NCCL build of torch; none here")
    return requested


# ProcessGroupNCCL stopped calling recordStream on collectives' tensors in torch 2.8
# (TORCH_NCCL_AVOID_RECORD_STREAMS became the default, its stash path unconditional).
GRAPH_SAFE_LIST_TORCH = (2, 8)


def check_backend(config: SweepConfig, backend: str, torch_version: str | None = None) -> None:
    """What the chosen backend (and torch, `torch_version` or the installed one) cannot
    do, refused before anything starts."""
    if config.cuda_graph and backend != "nccl":
        raise UsageError(
            f"cuda-graph: needs the nccl backend on CUDA GPUs; this run uses {backend} on CPU"
        )
    if config.cuda_graph and "list" in config.variants:
        if torch_version is None:
            torch_version = torch.__version__
        release = tuple(int(part) for part in re.findall(r"\d+", torch_version)[:2])
        if release < GRAPH_SAFE_LIST_TORCH:
            raise UsageError(
                f"cuda-graph: the list forms need torch 2.8 or later under CUDA graphs (this"
                f" is {torch_version}): before it ProcessGroupNCCL records the flat buffer on"
                " its stream, capture defers those frees and every captured operation keeps"
                " its own; add --variants tensor or use torch >= 2.8"
            )


SHARED_GPU_VAR = "COMMBENCH_SHARE_GPU"  # "1": ranks may share a GPU, for correctness only


# What lets NCCL ranks share a GPU: each rank its own NCCL host. NCCL refuses two ranks of
# one host on one GPU ("Duplicate GPU detected" up to 2.29; 2.30 asks for its experimental
# NCCL_MULTI_RANK_GPU_ENABLE), and compares hosts by a hash of NCCL_HOSTID where it is set.
# Ranks of different hosts talk over the network: NCCL's socket transport, P2P, shared
# memory and InfiniBand off, as between machines.
SHARED_GPU_NCCL = {
    "NCCL_P2P_DISABLE": "1",
    "NCCL_SHM_DISABLE": "1",
    "NCCL_IB_DISABLE": "1",
    "NCCL_NET": "Socket",
}
SHARED_GPU_SAID = (
    f"commbench: {SHARED_GPU_VAR}=1: ranks may share a GPU, each its own NCCL host"
    " (NCCL_HOSTID per rank; P2P, SHM and IB off; NCCL_NET=Socket): for correctness checks"
    " only, never for timings"
)


def sharing_allowed(environ: dict[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get(SHARED_GPU_VAR) == "1"


def shared_gpu_env(environ: dict[str, str], rank: int) -> dict[str, str]:
    """What rank `rank` sets before NCCL starts when ranks may share a GPU: its own
    NCCL_HOSTID (the one given, else the host's name, with the rank), and SHARED_GPU_NCCL
    where the environment does not say otherwise."""
    host = environ.get("NCCL_HOSTID") or socket.gethostname()
    transport = {name: environ.get(name, value) for name, value in SHARED_GPU_NCCL.items()}
    return {**transport, "NCCL_HOSTID": f"{host}-rank{rank}"}


def cuda_index(local_rank: int, visible: int, shared: bool = False) -> int:
    """This rank's GPU among the `visible` ones on its node.

    A task that sees one GPU owns it, whatever its LOCAL_RANK (`srun --gpus-per-task=1`,
    or CUDA_VISIBLE_DEVICES with one entry per task): that GPU is cuda:0. Otherwise rank
    i of a node takes GPU i, and a rank beyond the GPUs is refused: ranks sharing a GPU
    time each other (`COMMBENCH_SHARE_GPU=1` allows it, for correctness checks only).
    """
    if visible == 1:
        return 0
    if local_rank < visible:
        return local_rank
    if shared:
        return local_rank % visible
    raise UsageError(
        f"nproc: local rank {local_rank} has no GPU of its own ({visible} visible on this"
        f" node): run at most {visible} ranks per node"
    )


def check_gpu_count(nproc: int, visible: int, shared: bool = False) -> None:
    """`sweep --nproc N` on NCCL: N ranks need N GPUs."""
    if nproc > visible and not shared:
        raise UsageError(
            f"nproc: {nproc} ranks but {visible} GPU(s) visible: ranks sharing a GPU time"
            f" each other ({SHARED_GPU_VAR}=1 allows it, for correctness checks only)"
        )
