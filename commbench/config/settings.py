"""The sweep configuration: TOML presets layered under CLI flags, validated by pydantic.

Every rank loads and validates the same configuration the same way before any
collective is issued, so bad input ends every rank with the same one-line error
instead of leaving one rank waiting in a collective for another.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
)

from commbench.catalogue import CATALOGUE, VARIANTS
from commbench.config.serving_model import ModelInfo, MoeConfig, check_model
from commbench.errors import UsageError, describe_invalid
from commbench.point import ELEMENT_SIZE, Dtype

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The configs ship inside the package (package data), so a wheel has them too.
CONFIG_DIR = Path(str(resources.files("commbench") / "configs"))
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"

Variant = Literal[VARIANTS]  # type: ignore[valid-type]
CollectiveName = Literal[tuple(CATALOGUE)]  # type: ignore[valid-type]
Backend = Literal["auto", "nccl", "gloo"]
GroupLayout = Literal["contiguous", "strided"]

# Run settings that do not shape the numbers: not hashed, so a resumed or re-run sweep
# with another budget or timeout still compares with its baseline.
UNHASHED = {"out", "label", "model", "timeout", "max_bytes", "profile_phases"}

# A label names a directory (results/<time>-<label>) and a run in reports: a plain name,
# never a path, a hidden file, an option-like word or a list (`compare --labels a,b`).
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


class TimingConfig(BaseModel):
    """How much effort each point gets (docs/method.md, "Timing")."""

    model_config = ConfigDict(extra="forbid")

    warmup: int = Field(ge=0, description="Untimed operations before each point.")
    min_sample_ms: float = Field(
        gt=0, description="K is chosen so one sample lasts at least this long."
    )
    max_iters: PositiveInt = Field(description="Upper bound on K.")
    min_samples: int = Field(ge=2, description="Samples per point, at least.")
    max_samples: PositiveInt = Field(description="Samples per point, at most.")
    target_ci: float = Field(
        gt=0, lt=1, description="Stop once the 95% CI of the median is within +-this (relative)."
    )
    max_seconds: float = Field(gt=0, description="Time budget per point and round.")


class SweepConfig(BaseModel):
    """One sweep: the cross product of these lists, for every tp split of the world."""

    model_config = ConfigDict(extra="forbid")

    # Every field with a description is a flag of `commbench sweep` too (flags.py), and
    # tests/config/test_flags.py holds docs/usage.md's option table to the same list.
    tokens: list[PositiveInt] = Field(
        min_length=1, description="Token counts per group, e.g. 1,128,1024."
    )
    hidden: list[PositiveInt] = Field(min_length=1, description="Hidden sizes, e.g. 4096,7168.")
    dtypes: list[Dtype] = Field(min_length=1, description=", ".join(ELEMENT_SIZE) + ".")
    tp: list[PositiveInt] | None = Field(
        default=None,
        description="Group sizes (attn_tp); dp = world / tp. Default: every divisor above 1.",
    )
    collectives: list[CollectiveName] = Field(
        min_length=1, description="Collectives to time: " + ", ".join(CATALOGUE) + "."
    )
    variants: list[Variant] = Field(
        min_length=1,
        description="Forms to time: " + ", ".join(VARIANTS) + " (those a collective has).",
    )
    backend: Backend = Field(default="auto", description="auto | nccl | gloo.")
    rounds: PositiveInt = Field(
        description="Run the plan this many times, each round in a new seeded order."
    )
    seed: int = Field(description="Seed of the rounds' order.")
    timing: TimingConfig
    out: str | None = Field(
        default=None, description="Run directory. Default results/<time>[-label]."
    )
    label: str | None = Field(
        default=None, description="Name of this run in reports and comparisons."
    )
    model: ModelInfo | None = None  # a preset's [model]: informational, not hashed, no flag
    vocab: list[PositiveInt] = Field(
        default=[], description="Vocabulary sizes for logits_gather, e.g. 129280,128257."
    )
    moe: MoeConfig | None = None  # the routed collectives' routings
    group_layout: GroupLayout = Field(
        default="contiguous",
        description="contiguous: groups of consecutive ranks (SGLang's, default); strided:"
        " rank r joins group r % dp, so each group spans the nodes.",
    )
    timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds a collective may go without completing before the run is ended"
        " as hung (a dead or stuck peer).",
    )
    max_bytes: ByteSize | None = Field(
        default=None,
        gt=0,
        description="Skip points whose buffers (with a list form's hidden flat copy) need more"
        " than this per rank (e.g. 512MiB, 8GB); every rank agrees, the row says skipped.",
    )
    cuda_graph: bool = Field(
        default=False,
        description="Capture K operations once per point and replay them (how decode runs);"
        " NCCL on CUDA GPUs only.",
    )
    profile_phases: bool = Field(
        default=False,
        description="Print where the points' time went (always recorded in meta.json).",
    )

    @field_validator("label")
    @classmethod
    def _plain_label(cls, label: str | None) -> str | None:
        if label is not None and not LABEL.fullmatch(label):
            raise ValueError(
                "must be 1-100 letters, digits, '.', '_', '+' or '-', starting with a letter"
                " or digit"
            )
        return label

    @field_validator("out")
    @classmethod
    def _literal_out(cls, out: str | None) -> str | None:
        """The directory as given: nothing expands `~` or `$VAR` in a config, and a literal
        directory named `~` or `$HOME` would surprise as much, so both are refused."""
        if out is None:
            return out
        if not out:
            raise ValueError("must not be empty (leave it out for results/<time>[-label])")
        if out.startswith("~") or "$" in out:
            raise ValueError("'~' and '$' are not expanded; give the path itself")
        if any(ord(char) < 32 or char == "\x7f" for char in out):
            raise ValueError("must not contain control characters")
        return out

    def config_hash(self) -> str:
        """Hash of everything that shapes the numbers (not where they are written, nor the
        informational [model]: a config without one hashes as it always did)."""
        shaping = self.model_dump(exclude=UNHASHED)
        if not shaping["vocab"]:  # added with logits_gather: configs without it hash as before
            del shaping["vocab"]
        if shaping["group_layout"] == "contiguous":  # likewise for the default layout
            del shaping["group_layout"]
        if not shaping["cuda_graph"]:  # and for eager timing
            del shaping["cuda_graph"]
        if shaping["moe"] is None:  # and without a [moe] routing
            del shaping["moe"]
        blob = json.dumps(shaping, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _is_preset(path: Path) -> bool:
    return "model" in read_toml(path, "preset")


def preset_names() -> list[str]:
    """The model presets: the files in configs/ with a [model] table."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.toml") if _is_preset(path))


def preset_path(name: str) -> Path:
    """configs/NAME.toml, or a UsageError listing the presets there are."""
    names = preset_names()
    if name not in names:
        raise UsageError(f"preset: unknown {name!r}, expected one of {names}")
    return CONFIG_DIR / f"{name}.toml"


def shipped_configs() -> list[str]:
    """Every config shipped with commbench, by name (`--config NAME`)."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.toml"))


def config_file(path: Path) -> Path:
    """`--config PATH`: the file, else the shipped config of that name (`ci` or `ci.toml`:
    what a pip install holds where a clone has configs/ci.toml). Refused in one line,
    naming the shipped ones, when neither exists."""
    if path.exists() or path.parent != Path("."):
        return path
    shipped = CONFIG_DIR / f"{path.name.removesuffix('.toml')}.toml"
    if shipped.exists():
        return shipped
    raise UsageError(
        f"config: no file {str(path)!r}, nor a shipped config of that name"
        f" ({', '.join(shipped_configs())}; `commbench configs` lists them)"
    )


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
    """`top` over `base`, table by table; None (a flag not given) leaves `base` as it is."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict):
            below = merged.get(key)
            table = _layer(below if isinstance(below, dict) else {}, value)
            if table:  # a table of flags none of which was given adds nothing
                merged[key] = table
        elif value is not None:
            merged[key] = value
    return merged


def load_config(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    source: str = "config",
    *,
    preset: str | None = None,
    max_tokens: int | None = None,
    recorded: dict[str, Any] | None = None,
) -> SweepConfig:
    """Layer the base, then `path`, then CLI `overrides`; validate; keep tokens <= max_tokens.

    The base is default.toml, or the preset's own complete file (configs/NAME.toml) when
    `preset` is given; a preset and `path` together are refused, so what a run measured is
    always one file plus its flags. Resuming a run, its `recorded` config is the base and
    the file (or preset) and flags go on top: the run then refuses any difference.
    `max_tokens` (a reduced run for small machines) drops token counts above it after
    every layer, so each rank drops the same ones.
    """
    if preset is not None and path is not None:
        raise UsageError(
            f"preset: cannot be combined with --config {path}"
            " (a preset is a config file: pass either, plus flags)"
        )
    if preset is not None:
        path = preset_path(preset)
        data = read_toml(path, "preset")
    else:
        path = None if path is None else config_file(path)
        data = read_toml(DEFAULT_CONFIG)
        if path is not None:
            data = _layer(data, read_toml(path))
    if recorded is not None:
        kept = {key: value for key, value in recorded.items() if value is not None}
        data = _layer(kept, data if path is not None else {})
    if path is not None:
        source = str(path)
        _validate(data, source)  # a broken file is refused even where a flag replaces the value
    check_model(data, source)
    config = _validate(_layer(data, overrides or {}), source, overrides or {})
    return config if max_tokens is None else _reduce_tokens(config, max_tokens)


def recorded_config(recorded: dict[str, Any]) -> SweepConfig:
    """A run's recorded settings as the typed model: what it recorded over default.toml
    (a run recorded before a setting existed measured with its default). The `rounds` a
    run that recorded none took is 1, the only one there was."""
    return _validate(_layer(_defaults(), recorded), "meta.json config")


@functools.cache
def _defaults() -> dict[str, Any]:
    """default.toml, with the 1 round every run made before `rounds` existed."""
    return {**read_toml(DEFAULT_CONFIG), "rounds": 1}


def _validate(
    data: dict[str, Any], source: str, flags: dict[str, Any] | None = None
) -> SweepConfig:
    """The config, or a UsageError naming what the user wrote: the flag (`--target-ci`)
    where the bad value came from one of `flags`, else `source` and the TOML key."""
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as err:
        raise UsageError(describe_invalid(err, source, _flag_of(err, flags or {}))) from None


def _flag_of(err: ValidationError, flags: dict[str, Any]) -> str | None:
    """`--name` of the flag that gave the first invalid value, or None (a file did)."""
    given: Any = flags
    path = [part for part in err.errors()[0]["loc"] if isinstance(part, str)]
    for part in path:
        given = given.get(part) if isinstance(given, dict) else None
    if given is None or isinstance(given, dict):
        return None
    return "--" + path[-1].replace("_", "-")


def _reduce_tokens(config: SweepConfig, max_tokens: int) -> SweepConfig:
    kept = [tokens for tokens in config.tokens if tokens <= max_tokens]
    if not kept:
        raise UsageError(
            f"max-tokens: {max_tokens} leaves no token count (tokens are {config.tokens})"
        )
    return config.model_copy(update={"tokens": kept})
