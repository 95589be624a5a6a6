"""Process groups: the world, a host-side control group, and the dp x tp subgroups.

The control group is always gloo on CPU: barriers before samples, sample times and
check verdicts travel on it, so they never queue behind the measured collectives on
a GPU stream and never allocate device memory.
"""

from __future__ import annotations

import inspect
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from commbench.errors import UsageError
from commbench.ops.base import GroupContext, tensor_api
from commbench.sweep.backend import (
    SHARED_GPU_SAID,
    SHARED_GPU_VAR,
    choose_backend,
    cuda_index,
    shared_gpu_env,
    sharing_allowed,
)
from commbench.sweep.faults import NCCL_GRACE
from commbench.sweep.launch import SLURM_TO_TORCH, check_rendezvous, launcher_env


def group_timeouts(backend: str, timeout_s: float) -> tuple[timedelta, timedelta]:
    """(control group's, measured groups') timeouts for `--timeout`.

    On NCCL, PyTorch's own watchdog tears the process down (SIGABRT) once a collective
    exceeds its group's timeout: ProcessGroupNCCL's default TORCH_NCCL_ASYNC_ERROR_HANDLING
    is 3, SkipCleanUp (ProcessGroupNCCL.cpp, the constructor: `getCvarInt(
    TORCH_NCCL_ASYNC_ERROR_HANDLING, 3 /*SkipCleanUp*/)`), and its watchdog then throws
    on its own thread. commbench's watchdog, which records `stopped` and exits 3, must act
    first on every rank, so the measured NCCL groups wait NCCL_GRACE x --timeout, past it.
    The control group (gloo, on CPU) keeps --timeout: its timeout raises in the main
    thread, which then stops the run the same way.
    """
    control = timedelta(seconds=timeout_s)
    return control, control * NCCL_GRACE if backend == "nccl" else control


def group_ranks(world_size: int, tp: int, layout: str) -> list[tuple[int, ...]]:
    """Every group of `tp` ranks a split deals the world into, in creation order.

    `contiguous` (SGLang's): group g is ranks g*tp .. g*tp+tp-1, so a group stays inside a
    node whenever tp fits in one. `strided`: with dp = world_size / tp groups, group g is
    ranks g, g+dp, g+2*dp, ...: one rank from every block of dp consecutive ranks, so with
    dp ranks per node every group spans every node and its collectives cross the network.
    """
    dp = world_size // tp
    if layout == "contiguous":
        return [tuple(range(g * tp, (g + 1) * tp)) for g in range(dp)]
    if layout == "strided":
        return [tuple(range(g, world_size, dp)) for g in range(dp)]
    raise ValueError(f"unknown group layout {layout!r}, expected 'contiguous' or 'strided'")


@dataclass
class World:
    """This process's place in the world, and the groups built from it (each once)."""

    rank: int
    size: int
    local_rank: int
    backend: str
    device: torch.device
    control: dist.ProcessGroup | None
    layout: str = "contiguous"  # how ranks are dealt into groups: see group_ranks
    timeout: timedelta = timedelta(seconds=300)  # for every group: new_group does not inherit
    heartbeat: Callable[[], None] = lambda: None  # called each time a control collective ends
    _splits: dict[int, GroupContext] = field(default_factory=dict)

    def barrier(self) -> None:
        dist.barrier(group=self.control)
        self.heartbeat()

    def gather_floats(self, values: list[float]) -> torch.Tensor:
        """Every rank's `values`, as a [world, len(values)] float64 tensor on every rank."""
        mine = torch.tensor(values, dtype=torch.float64)
        every = torch.empty(self.size * len(values), dtype=torch.float64)
        _, gather = tensor_api("all_gather_into_tensor", "all_gather_single")
        gather(every, mine, group=self.control)
        self.heartbeat()
        return every.view(self.size, len(values))

    def max_floats(self, values: list[float]) -> torch.Tensor:
        """The elementwise largest of every rank's `values`, on every rank. One all_reduce:
        on gloo it costs a third of an all_gather of the same values."""
        every = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(every, op=dist.ReduceOp.MAX, group=self.control)
        self.heartbeat()
        return every

    def all_true(self, flag: bool) -> bool:
        """True when `flag` holds on every rank (the ranks decide together)."""
        return bool(self.gather_floats([float(flag)]).min() > 0)

    def gather_objects(self, value: object) -> list[object]:
        every: list[object] = [None] * self.size
        dist.all_gather_object(every, value, group=self.control)
        self.heartbeat()
        return every

    def from_rank0(self, value: object) -> object:
        """Rank 0's `value` on every rank: one copy sent, however large it is."""
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.control)
        self.heartbeat()
        return box[0]

    def split(self, tp: int) -> GroupContext:
        """This rank's group of `tp` ranks in the world's layout; all dp groups are created
        once, in `group_ranks` order (every rank must create every group, in the same order),
        and this rank's is warmed (`warm_group`) before any point uses it."""
        if tp not in self._splits:
            for ranks in group_ranks(self.size, tp, self.layout):
                group = dist.new_group(list(ranks), timeout=self.timeout)
                if self.rank in ranks:
                    self._splits[tp] = GroupContext(
                        group, ranks, ranks.index(self.rank), self.device, self.backend
                    )
            warm_group(self._splits[tp].group, self.device)  # once every group exists
        return self._splits[tp]

    def release(self, tp: int) -> None:
        """Destroy this rank's group of a split that no later point uses: its backend
        buffers (gloo's, NCCL's communicator) go back before the next split starts."""
        ctx = self._splits.pop(tp, None)
        if ctx is not None:
            _settle(ctx.group)
            dist.destroy_process_group(ctx.group)


def init_world(
    requested_backend: str, timeout_s: float = 600.0, layout: str = "contiguous"
) -> World:
    """Join the process group that torchrun, the elastic launcher or srun set up."""
    env = launcher_env()
    os.environ.update({k: env[k] for k in SLURM_TO_TORCH.values() if k in env})
    check_rendezvous()
    backend = choose_backend(requested_backend)
    local_rank = int(env.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        if sharing_allowed():
            _share_gpus(int(env["RANK"]))
        index = cuda_index(local_rank, torch.cuda.device_count(), sharing_allowed())
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    control_timeout, timeout = group_timeouts(backend, timeout_s)
    dist.init_process_group(backend=backend, timeout=timeout, **eager_init(backend, device))
    control = None if backend == "gloo" else dist.new_group(backend="gloo", timeout=control_timeout)
    world = World(
        rank=dist.get_rank(),
        size=dist.get_world_size(),
        local_rank=local_rank,
        backend=backend,
        device=device,
        control=control,
        layout=layout,
        timeout=timeout,
    )
    if backend == "nccl":
        _refuse_shared_gpus(world)
    return world


def eager_init(backend: str, device: torch.device) -> dict[str, torch.device]:
    """init_process_group's `device_id` on NCCL, where this torch takes it: the world's
    communicator is created at once, and every group made from it is split from it
    (ncclCommSplit) when it is created, not at its first collective."""
    takes = "device_id" in inspect.signature(dist.init_process_group).parameters
    return {"device_id": device} if backend == "nccl" and takes else {}


def warm_group(group: dist.ProcessGroup, device: torch.device) -> None:
    """One untimed collective on a group just made, so that no measured point's first
    operation carries the group's set-up: NCCL creates a communicator lazily (without
    `device_id`) and connects its channels at the first collective that needs them. On
    gloo, which connects when the group is made, it costs one tiny all_reduce."""
    dist.all_reduce(torch.zeros(1, device=device), group=group)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _share_gpus(rank: int) -> None:
    """Ranks that may share a GPU become separate NCCL hosts (shared_gpu_env), before NCCL
    reads its environment at the world's first communicator; rank 0 says so."""
    os.environ.update(shared_gpu_env(dict(os.environ), rank))
    if rank == 0:
        print(SHARED_GPU_SAID, file=sys.stderr)


def _refuse_shared_gpus(world: World) -> None:
    """Two ranks of one node on one GPU (every task saw the same single GPU): refused on
    every rank, unless COMMBENCH_SHARE_GPU=1."""
    props = torch.cuda.get_device_properties(world.device)
    mine = (socket.gethostname(), str(getattr(props, "uuid", world.device.index)))
    every = world.gather_objects(mine)
    if len(set(every)) < len(every) and not sharing_allowed():
        host, gpu = next(pair for pair in every if every.count(pair) > 1)
        raise UsageError(
            f"nproc: {every.count((host, gpu))} ranks on {host} share GPU {gpu}: ranks sharing a"
            f" GPU time each other ({SHARED_GPU_VAR}=1 allows it, for correctness checks only)"
        )


# How long a rank lets go of the GIL before destroying a gloo group (see _settle)
SETTLE_S = 0.05


def _settle(group: dist.ProcessGroup | None) -> None:
    """Let a gloo group's worker threads finish before the group is destroyed.

    torch 2.7's ~ProcessGroupGloo joins its worker threads while the caller holds the GIL,
    and a worker dropping the last reference to a finished operation's tensor needs the
    GIL to free the tensor's Python object: a deadlock at exit, seen under torch 2.7.1
    (gdb: main thread in ~ProcessGroupGloo -> std::thread::join, a worker in
    PyObjectSlot::maybe_destroy_pyobj -> take_gil). A barrier drains the group's queue,
    and a short sleep, which releases the GIL, lets the workers drop what they hold.
    """
    if dist.get_backend(group) == "gloo":
        dist.barrier(group=group)
        time.sleep(SETTLE_S)


def close_world(world: World | None = None) -> None:
    """Destroy every group; `world`'s control group and splits settle first (_settle)."""
    if not dist.is_initialized():
        return
    if world is not None:
        for tp in list(world._splits):
            world.release(tp)
        _settle(world.control)
    dist.destroy_process_group()
