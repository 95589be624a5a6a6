"""What must match between runs for their numbers to be compared (METHOD.md, "Metadata")."""

from __future__ import annotations

from typing import Any

# name -> how to read it from meta.json
IDENTITY_FIELDS = {
    "commbench": lambda m: m.get("versions", {}).get("commbench"),
    "torch": lambda m: m.get("versions", {}).get("torch"),
    "cuda": lambda m: m.get("versions", {}).get("cuda"),
    "nccl_built": lambda m: m.get("versions", {}).get("nccl_built"),
    "nccl_runtime": lambda m: m.get("versions", {}).get("nccl_runtime"),
    "backend": lambda m: m.get("backend"),
    "devices": lambda m: sorted({d.get("name") for d in m.get("devices", [])}),
    "device_count": lambda m: len(m.get("devices", [])),
    "world_size": lambda m: m.get("world_size"),
    "nodes": lambda m: m.get("nodes"),
    "config_hash": lambda m: m.get("config_hash"),
    "nccl_env": lambda m: {
        k: v for k, v in m.get("env", {}).items() if k.startswith(("NCCL_", "TORCH_NCCL_"))
    },
}


def identity(meta: dict[str, Any]) -> dict[str, Any]:
    return {name: read(meta) for name, read in IDENTITY_FIELDS.items()}


def identity_diff(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, tuple]:
    """Fields whose values differ: name -> (reference value, other value)."""
    mine, theirs = identity(reference), identity(other)
    return {name: (mine[name], theirs[name]) for name in mine if mine[name] != theirs[name]}
