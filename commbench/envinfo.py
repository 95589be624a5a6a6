"""What makes two runs comparable: versions, devices, hosts and allowlisted settings.

One `collect_*` function per area (pyperf's model). The environment is read through
an allowlist and secret-looking values are redacted: never dump the whole environment.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from typing import Any

import torch

import commbench
from commbench.nccl import collect_nccl

NVIDIA_SMI_TIMEOUT = 10.0  # seconds; a wedged driver must not hang `commbench env`

ENV_PREFIXES = ("NCCL_", "TORCH_NCCL_", "TORCH_DISTRIBUTED_", "GLOO_", "CUDA_", "OMP_")
ENV_NAMES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "LOCAL_WORLD_SIZE")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL", re.IGNORECASE)


def collect_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Allowlisted variables; values of secret-looking names are redacted."""
    env = os.environ if environ is None else environ
    chosen = {
        name: value
        for name, value in env.items()
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES
    }
    return {
        name: "<redacted>" if SECRET_NAME.search(name) else value
        for name, value in sorted(chosen.items())
    }


def collect_versions() -> dict[str, Any]:
    nccl = collect_nccl()
    return {
        "commbench": commbench.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "nccl_built": nccl["built"],  # what torch was built with, not necessarily what runs
        "nccl_runtime": nccl["runtime"],  # the loaded library's own answer
        "nccl_path": nccl["path"],
    }


def collect_device(device: torch.device) -> dict[str, Any]:
    """This rank's device; on CPU the processor, so a reader knows what ran."""
    if device.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(device)}
    return {"type": "cpu", "name": platform.processor() or platform.machine()}


def collect_rank(device: torch.device) -> dict[str, Any]:
    """What each rank reports about itself; rank 0 gathers these from every rank."""
    return {
        "hostname": socket.gethostname(),
        "device": collect_device(device),
        "versions": collect_versions(),
    }


def collect_host() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv[1:],
    }


def _nvidia_smi(*args: str) -> str | None:
    """nvidia-smi's stdout, or None when it is absent, fails or hangs."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, *args], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def collect_gpus() -> dict[str, Any]:
    """Visible GPUs (count, names) and the driver version; never fails."""
    count, names = 0, []
    try:
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            names = [torch.cuda.get_device_name(index) for index in range(count)]
    except Exception:  # a broken driver is reported as no GPU, not as a crash
        count, names = 0, []
    drivers = _nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    driver = None
    if drivers:
        unique = dict.fromkeys(line.strip() for line in drivers.splitlines() if line.strip())
        driver = ", ".join(unique) or None
    return {"count": count, "names": names, "driver": driver}


def collect_topology() -> str | None:
    """`nvidia-smi topo -m`: which GPUs talk over NVLink, PCIe switches or the CPU."""
    return _nvidia_smi("topo", "-m") or None


def collect_all() -> dict[str, Any]:
    """Everything `commbench env` shows."""
    from commbench.groups import choose_backend

    return {
        "versions": collect_versions(),
        "nccl": collect_nccl(),
        "gpus": collect_gpus(),
        "topology": collect_topology(),
        "hostname": socket.gethostname(),
        "env": collect_env(),
        "backend": choose_backend("auto"),
    }
