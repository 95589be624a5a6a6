"""What makes two runs comparable: versions, devices, hosts and allowlisted settings.

One `collect_*` function per area (pyperf's model). The environment is read through
an allowlist and secret-looking values are redacted: never dump the whole environment.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import sys
from typing import Any

import torch

import commbench

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
    nccl = None
    if torch.cuda.is_available() and hasattr(torch.cuda, "nccl"):
        nccl = ".".join(str(part) for part in torch.cuda.nccl.version())
    return {
        "commbench": commbench.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "nccl_built": nccl,  # the version torch was built with, not necessarily the one loaded
    }


def collect_device(device: torch.device) -> dict[str, Any]:
    """This rank's device; on CPU the processor, so a reader knows what ran."""
    if device.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(device)}
    return {"type": "cpu", "name": platform.processor() or platform.machine()}


def collect_rank(device: torch.device) -> dict[str, Any]:
    """What each rank reports about itself; rank 0 gathers these from every rank."""
    return {"hostname": socket.gethostname(), "device": collect_device(device)}


def collect_host() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv[1:],
    }
