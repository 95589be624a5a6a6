"""What must match between runs for their numbers to be compared (docs/method.md,
"Metadata and identity")."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    """Fields whose values differ: name -> (reference value, other value). A differing
    config_hash is said as the settings behind it (`tokens`, `timing.target_ci`) where the
    runs recorded their configs."""
    mine, theirs = identity(reference), identity(other)
    differs = {name: (mine[name], theirs[name]) for name in mine if mine[name] != theirs[name]}
    if "config_hash" in differs and (settings := config_diff([reference, other])):
        del differs["config_hash"]
        differs.update({name: (first, second) for name, (first, second) in settings.items()})
    return differs


def _flat(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A recorded config's settings by TOML key (`timing.target_ci`)."""
    flat: dict[str, Any] = {}
    for name, value in table.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def config_diff(metas: Sequence[RunMeta]) -> dict[str, list[Any]]:
    """The recorded settings that shape the numbers and differ between the runs: TOML key
    -> value per run (what a differing config_hash means, in the user's words). A setting
    one run lacks and another leaves empty is not a difference."""
    from commbench.config.settings import UNHASHED

    dumped = [m.config.model_dump(mode="json") for m in metas]
    configs = [_flat({k: v for k, v in d.items() if k not in UNHASHED}) for d in dumped]
    names = sorted(set().union(*configs))
    values = {name: [config.get(name) for config in configs] for name in names}
    return {
        name: each
        for name, each in values.items()
        if any(value != each[0] for value in each) and any(value for value in each)
    }


def expand_config(differs: dict[str, list[Any]], metas: Sequence[RunMeta]) -> dict[str, list]:
    """`differs` with a differing config_hash replaced by the settings behind it (kept
    where the runs did not record their configs)."""
    if "config_hash" not in differs:
        return differs
    settings = config_diff(metas)
    if not settings:
        return differs
    return {**{k: v for k, v in differs.items() if k != "config_hash"}, **settings}


def describe_diff(differs: Mapping[str, Sequence[Any]], labels: Sequence[str]) -> list[str]:
    """One line per differing field: `tokens: baseline [1, 8], current [1, 128]`. The
    gate and compare say what differs in these words, before any table."""
    return [
        f"{name}: "
        + ", ".join(f"{label} {value}" for label, value in zip(labels, values, strict=True))
        for name, values in differs.items()
    ]
