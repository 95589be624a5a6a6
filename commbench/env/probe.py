"""What makes two runs comparable: versions, devices, hosts and allowlisted settings.

One `collect_*` function per area (pyperf's model). The environment is read through
an allowlist, and values whose name or content looks secret are redacted: never dump the
whole environment.
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
from commbench.env.nccl import collect_nccl

NVIDIA_SMI_TIMEOUT = 10.0  # seconds; a wedged driver must not hang `commbench env`

ENV_PREFIXES = ("NCCL_", "TORCH_NCCL_", "TORCH_DISTRIBUTED_", "GLOO_", "CUDA_", "OMP_")
ENV_NAMES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "LOCAL_WORLD_SIZE")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL", re.IGNORECASE)
REDACTED = "<redacted>"
# What a secret looks like inside a value, whatever its variable is called. A false alarm
# only hides a value; a miss leaks one, so these lean towards redacting.
SECRET_VALUES = (
    # a URL with a user (and maybe a password) before the host: https://user:pass@host
    re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@]+@"),
    # tokens known by their prefix: GitHub, Hugging Face, OpenAI-style, Slack, GitLab
    re.compile(
        r"(?<![A-Za-z0-9])(?:gh[pousr]_|github_pat_|hf_|sk-|xox[abposr]-|glpat-)[A-Za-z0-9_-]{16,}"
    ),
    # AWS access key ids
    re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),
    # a JSON web token: base64url of '{"...' then payload and signature, dot separated
    re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\."),
    # a PEM private key
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # an assignment to a secret-sounding key inside the value: "user=a;password=b"
    re.compile(rf"(?:{SECRET_NAME.pattern})[A-Za-z_]*\s*[=:]", re.IGNORECASE),
    # 32 or more hex digits in a row: API keys, keys' digests
    re.compile(r"(?<![A-Za-z0-9])[0-9A-Fa-f]{32,}(?![A-Za-z0-9])"),
    # 32 or more base64 characters in a row mixing upper case, lower case and digits: random
    # keys look like this, words, hostnames and ids (split by '.', '-', '_') do not; a run
    # that begins with '/' is a path
    re.compile(
        r"(?<![A-Za-z0-9+/=])(?!/)"  # where a run starts, unless with a path's '/'
        r"(?=[A-Za-z0-9+/=]*[a-z])(?=[A-Za-z0-9+/=]*[A-Z])(?=[A-Za-z0-9+/=]*[0-9])"
        r"[A-Za-z0-9+/=]{32,}"
    ),
)


def looks_secret(value: str) -> bool:
    """Whether a value looks like a token, key, password or credentials-bearing URL."""
    return any(pattern.search(value) for pattern in SECRET_VALUES)


def collect_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Allowlisted variables; secret-looking names or values are redacted."""
    env = os.environ if environ is None else environ
    chosen = {
        name: value
        for name, value in env.items()
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES
    }
    return {
        name: REDACTED if SECRET_NAME.search(name) or looks_secret(value) else value
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
        "nccl_runtime": nccl["runtime"],  # the bound library's own answer
        "nccl_path": nccl["path"],  # the library NCCL calls resolve to
        "nccl_mapped": nccl["mapped"],  # every libnccl mapped, bound or not
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


def collect_all(backend: str) -> dict[str, Any]:
    """Everything `commbench env` shows; `backend`: the one a sweep here would use."""
    return {
        "versions": collect_versions(),
        "nccl": collect_nccl(),
        "gpus": collect_gpus(),
        "topology": collect_topology(),
        "hostname": socket.gethostname(),
        "env": collect_env(),
        "backend": backend,
    }
