"""Launcher environments (torchrun, the elastic launcher, srun) and group layouts."""

from __future__ import annotations

import pytest

from commbench.groups import group_ranks
from commbench.launch import is_launched, launcher_env


def test_srun_launches_are_translated_to_torch_names() -> None:
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1"}
    env = launcher_env(slurm)
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]) == ("5", "16", "1")
    assert is_launched(slurm) and not is_launched({})
    torchrun = {**slurm, "RANK": "0", "WORLD_SIZE": "2"}  # torchrun inside an allocation wins
    assert launcher_env(torchrun)["RANK"] == "0"


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
