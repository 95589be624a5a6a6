"""What must match between runs for their numbers to be compared (docs/method.md,
"Metadata and identity")."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from commbench.rundir.meta import RunMeta

NCCL_ENV_PREFIXES = ("NCCL_", "TORCH_NCCL_")

# name -> how to read it from a run's meta
IDENTITY_FIELDS: dict[str, Callable[[RunMeta], Any]] = {
    "commbench": lambda m: m.versions.commbench,
    "torch": lambda m: m.versions.torch,
    "cuda": lambda m: m.versions.cuda,
    "nccl_built": lambda m: m.versions.nccl_built,
    "nccl_runtime": lambda m: m.versions.nccl_runtime,
    "backend": lambda m: m.backend,
    "devices": lambda m: sorted(set(m.device_names)),
    "device_count": lambda m: len(m.devices),
    "world_size": lambda m: m.world_size,
    "nodes": lambda m: m.nodes,
    "config_hash": lambda m: m.config_hash,
    "nccl_env": lambda m: {k: v for k, v in m.env.items() if k.startswith(NCCL_ENV_PREFIXES)},
}


def identity(meta: RunMeta) -> dict[str, Any]:
    return {name: read(meta) for name, read in IDENTITY_FIELDS.items()}


def identity_diff(reference: RunMeta, other: RunMeta) -> dict[str, tuple]:
    """Fields whose values differ: name -> (reference value, other value)."""
    mine, theirs = identity(reference), identity(other)
    return {name: (mine[name], theirs[name]) for name in mine if mine[name] != theirs[name]}
