"""Launcher environments (torchrun, the elastic launcher, srun), devices, timeouts and
group layouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
import torch
from support.distworld import run_world

from commbench.errors import UsageError
from commbench.sweep.backend import (
    SHARED_GPU_VAR,
    check_gpu_count,
    cuda_index,
    shared_gpu_env,
    sharing_allowed,
)
from commbench.sweep.faults import WATCHDOG_GRACE
from commbench.sweep.launch import LAUNCHER_PID, is_launched, launcher_env
from commbench.sweep.world import eager_init, group_ranks, group_timeouts


def test_srun_launches_are_translated_to_torch_names() -> None:
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1"}
    env = launcher_env(slurm)
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]) == ("5", "16", "1")
    assert is_launched(slurm) and not is_launched({})
    torchrun = {**slurm, "RANK": "0", "WORLD_SIZE": "2"}  # torchrun inside an allocation wins
    assert launcher_env(torchrun)["RANK"] == "0"


@pytest.mark.parametrize(("launcher", "code"), [("parent", 0), ("gone", -signal.SIGTERM)])
def test_a_worker_whose_launcher_is_gone_ends_itself(launcher: str, code: int) -> None:
    """A worker's parent is not init once its launcher has died under a subreaper (an
    `ab` experiment is one): only the launcher's own pid tells the worker it is gone."""
    worker = "from commbench.sweep.launch import die_with_launcher as d; d()"
    pid = str(os.getpid()) if launcher == "parent" else "1"  # 1: not this worker's parent
    env = {**os.environ, LAUNCHER_PID: pid}
    assert subprocess.run([sys.executable, "-c", worker], env=env).returncode == code


@pytest.mark.parametrize(
    ("tp", "layout", "groups"),
    [
        (2, "contiguous", [(0, 1), (2, 3), (4, 5), (6, 7)]),
        (4, "contiguous", [(0, 1, 2, 3), (4, 5, 6, 7)]),
        (8, "contiguous", [(0, 1, 2, 3, 4, 5, 6, 7)]),
        (2, "strided", [(0, 4), (1, 5), (2, 6), (3, 7)]),
        (4, "strided", [(0, 2, 4, 6), (1, 3, 5, 7)]),
        (8, "strided", [(0, 1, 2, 3, 4, 5, 6, 7)]),
    ],
)
def test_group_ranks_of_a_world_of_8(tp: int, layout: str, groups: list[tuple[int, ...]]) -> None:
    assert group_ranks(8, tp, layout) == groups


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown group layout 'diagonal'"):
        group_ranks(8, 2, "diagonal")


def test_a_task_that_sees_one_gpu_owns_it_whatever_its_local_rank() -> None:
    """srun --gpus-per-task=1: LOCAL_RANK 3 sees one GPU, cuda:0, not cuda:3."""
    assert [cuda_index(rank, 1) for rank in range(4)] == [0, 0, 0, 0]
    assert [cuda_index(rank, 8) for rank in range(8)] == list(range(8))


def test_more_ranks_than_gpus_is_refused_unless_sharing_is_asked_for() -> None:
    with pytest.raises(UsageError, match="local rank 4 has no GPU of its own"):
        cuda_index(4, 2)
    assert cuda_index(4, 2, shared=True) == 0
    with pytest.raises(UsageError, match="nproc: 3 ranks but 2 GPU"):
        check_gpu_count(3, 2)
    check_gpu_count(2, 2)
    check_gpu_count(2, 1, shared=sharing_allowed({SHARED_GPU_VAR: "1"}))
    assert not sharing_allowed({})


def test_ranks_sharing_a_gpu_are_each_its_own_nccl_host_on_sockets() -> None:
    """NCCL refuses two ranks of one host on one GPU, and takes a host's identity from
    NCCL_HOSTID: every rank's differs, derived from the one given where there is one."""
    envs = [shared_gpu_env({}, rank) for rank in range(2)]
    assert envs[0]["NCCL_HOSTID"] != envs[1]["NCCL_HOSTID"]
    for env in envs:
        assert env["NCCL_P2P_DISABLE"] == env["NCCL_SHM_DISABLE"] == env["NCCL_IB_DISABLE"] == "1"
        assert env["NCCL_NET"] == "Socket"
    given = shared_gpu_env({"NCCL_HOSTID": "node7", "NCCL_NET": "IB"}, 1)
    assert given["NCCL_HOSTID"] == "node7-rank1" and given["NCCL_NET"] == "IB"  # theirs kept


def test_commbench_watchdog_acts_before_the_nccl_watchdog() -> None:
    """PyTorch's NCCL watchdog aborts the process once a collective exceeds its group's
    timeout; commbench's fires at WATCHDOG_GRACE x --timeout and must come first."""
    control, measured = group_timeouts("nccl", 10)
    assert control == timedelta(seconds=10)
    assert measured > timedelta(seconds=10 * WATCHDOG_GRACE)
    assert group_timeouts("gloo", 10) == (timedelta(seconds=10), timedelta(seconds=10))


def _sequence_numbers(world) -> list[int]:
    """How many collectives each of this rank's groups has run, right after it was made."""
    return [world.split(tp).group._get_sequence_number_for_group() for tp in (1, 2)]


def test_every_group_runs_one_collective_when_it_is_made() -> None:
    """So that no measured point's first operation carries a group's set-up (on NCCL a
    communicator connects at its first collective; gloo takes the same path here)."""
    assert run_world(2, _sequence_numbers) == [[1, 1], [1, 1]]


def test_the_world_is_created_eagerly_on_nccl_only() -> None:
    assert eager_init("gloo", torch.device("cpu")) == {}
    assert eager_init("nccl", torch.device("cuda", 1)) == {"device_id": torch.device("cuda", 1)}
