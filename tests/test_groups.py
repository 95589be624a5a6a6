"""Launcher environments: torchrun, the elastic launcher, srun."""

from __future__ import annotations

from commbench.groups import is_launched, launcher_env


def test_srun_launches_are_translated_to_torch_names() -> None:
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1"}
    env = launcher_env(slurm)
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]) == ("5", "16", "1")
    assert is_launched(slurm) and not is_launched({})
    torchrun = {**slurm, "RANK": "0", "WORLD_SIZE": "2"}  # torchrun inside an allocation wins
    assert launcher_env(torchrun)["RANK"] == "0"
