"""The sweep configuration: TOML presets layered under CLI flags, validated by pydantic.

Every rank loads and validates the same configuration the same way before any
collective is issued, so bad input ends every rank with the same one-line error
instead of leaving one rank waiting in a collective for another.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator

from commbench.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"

Dtype = Literal["bfloat16", "float16", "float32"]
Variant = Literal["list", "tensor"]
Backend = Literal["auto", "nccl", "gloo"]


class TimingConfig(BaseModel):
    """How much effort each point gets (METHOD.md, "Timing")."""

    model_config = ConfigDict(extra="forbid")

    warmup: int = Field(ge=0)
    min_sample_ms: float = Field(gt=0)
    max_iters: PositiveInt
    min_samples: int = Field(ge=2)
    max_samples: PositiveInt
    target_ci: float = Field(gt=0, lt=1)
    max_seconds: float = Field(gt=0)


class SweepConfig(BaseModel):
    """One sweep: the cross product of these lists, for every tp split of the world."""

    model_config = ConfigDict(extra="forbid")

    tokens: list[PositiveInt] = Field(min_length=1)
    hidden: list[PositiveInt] = Field(min_length=1)
    dtypes: list[Dtype] = Field(min_length=1)
    tp: list[PositiveInt] | None = None
    collectives: list[str] = Field(min_length=1)
    variants: list[Variant] = Field(min_length=1)
    backend: Backend = "auto"
    rounds: PositiveInt
    seed: int
    timing: TimingConfig
    out: str | None = None
    label: str | None = None

    @field_validator("collectives")
    @classmethod
    def _known_collectives(cls, names: list[str]) -> list[str]:
        from commbench.ops import REGISTRY  # the catalogue is the one list of collectives

        for name in names:
            if name not in REGISTRY:
                raise ValueError(f"unknown collective {name!r}, expected one of {sorted(REGISTRY)}")
        return names

    def config_hash(self) -> str:
        """Hash of everything that shapes the numbers (not where they are written)."""
        shaping = self.model_dump(exclude={"out", "label"})
        blob = json.dumps(shaping, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def split_list(flag_value: str | None) -> list[str] | None:
    """`"1,128,1024"` -> `["1", "128", "1024"]`; pydantic converts and checks the items."""
    if flag_value is None:
        return None
    return [item.strip() for item in flag_value.split(",")]


def read_toml(path: Path, what: str = "config") -> dict[str, Any]:
    """Read a TOML file, turning every failure into a one-line UsageError."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as err:
        raise UsageError(f"{what} {path}: cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{what} {path}: invalid TOML: {err}") from None


def _layer(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _layer(merged[key], value)
        elif value is not None:
            merged[key] = value
    return merged


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {field!r}"
    return f"{source}: {field}: {message} (got {first['input']!r})"


def load_config(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    source: str = "config",
) -> SweepConfig:
    """Layer default.toml, then `path`, then CLI `overrides`; validate the result."""
    data = read_toml(DEFAULT_CONFIG)
    if path is not None:
        data = _layer(data, read_toml(path))
        source = str(path)
    if overrides:
        data = _layer(data, overrides)
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as err:
        raise UsageError(_describe(err, source)) from None


def resolve_tp(config: SweepConfig, world_size: int) -> list[int]:
    """The group sizes to sweep; each must divide the world (dp = world / tp)."""
    if config.tp is None:
        return [n for n in range(2, world_size + 1) if world_size % n == 0] or [world_size]
    for tp in config.tp:
        if world_size % tp:
            raise UsageError(f"tp: {tp} does not divide the world size {world_size}")
    return sorted(set(config.tp))
