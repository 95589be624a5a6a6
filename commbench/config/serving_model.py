"""The model a preset replays ([model] in its TOML): which model, from what source, its
serving (tp, dp) splits, and the MoE routings the routed collectives are swept over
([moe]). Validated per file before flags apply; needs no torch (`commbench presets`)."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from commbench.errors import UsageError, describe_invalid
from commbench.point import Dtype


class Split(BaseModel):
    """One way serving splits the model: `tp` ranks in `dp` attention groups."""

    model_config = ConfigDict(extra="forbid")

    tp: PositiveInt
    dp: PositiveInt

    @model_validator(mode="after")
    def _dp_divides_tp(self) -> Split:
        if self.tp % self.dp:
            raise ValueError(f"dp {self.dp} does not divide tp {self.tp}")
        return self

    @property
    def attn_tp(self) -> int:
        """The attention group size: what the sweep's `tp` means."""
        return self.tp // self.dp


class MoeConfig(BaseModel):
    """The MoE routings the routed collectives (all_to_all) are swept over ([moe]): the
    sweep crosses these lists like the sizes (commbench/routing.py says what they mean)."""

    model_config = ConfigDict(extra="forbid")

    experts: list[PositiveInt] = Field(
        min_length=1, description="all_to_all: routed experts, e.g. 256 (experts / tp per rank)."
    )
    topk: list[PositiveInt] = Field(
        min_length=1, description="all_to_all: experts per token, e.g. 8."
    )
    skew: list[NonNegativeFloat] = Field(
        default=[0.0],
        min_length=1,
        description="all_to_all: Zipf exponent of expert popularity, e.g. 0,1.2 (0: uniform).",
    )


class ModelInfo(BaseModel):
    """The model a preset replays ([model] in its TOML). Informational: it never changes
    what is measured (the sweep keys do) and is not part of the config hash."""

    model_config = ConfigDict(extra="forbid")

    name: str
    source: str
    hidden: PositiveInt
    vocab: PositiveInt
    dtype: Dtype
    splits: list[Split] = Field(min_length=1)
    note: str = ""
    experts: int = Field(default=0, ge=0)  # routed experts of a MoE model (0: dense)
    topk: int = Field(default=0, ge=0)  # experts each token is routed to


class ModelLayer(BaseModel):
    """A file with a [model] table, as far as the model concerns it: the model and the
    file's own sweep keys (over default.toml) it must agree with, before flags apply."""

    model_config = ConfigDict(extra="ignore")

    model: ModelInfo
    hidden: list[PositiveInt]
    dtypes: list[Dtype]
    tp: list[PositiveInt] | None = None
    vocab: list[PositiveInt] = []
    moe: MoeConfig | None = None

    def disagreement(self) -> str | None:
        """`field: why` for the first [model] value the sweep keys do not cover, or None."""
        model = self.model
        if model.hidden not in self.hidden:
            return f"model.hidden: {model.hidden} is not among the sweep's hidden {self.hidden}"
        if self.vocab and model.vocab not in self.vocab:
            return f"model.vocab: {model.vocab} is not among the sweep's vocab {self.vocab}"
        if model.experts and (self.moe is None or model.experts not in self.moe.experts):
            return f"model.experts: {model.experts} is not among the sweep's [moe] experts"
        if model.topk and (self.moe is None or model.topk not in self.moe.topk):
            return f"model.topk: {model.topk} is not among the sweep's [moe] topk"
        if model.dtype not in self.dtypes:
            return f"model.dtype: {model.dtype!r} is not among the sweep's dtypes {self.dtypes}"
        for split in model.splits:
            if self.tp is not None and split.attn_tp not in self.tp:
                return (
                    f"model.splits: tp {split.tp} dp {split.dp} has attention groups of"
                    f" {split.attn_tp}, not among the sweep's tp {self.tp}"
                )
        return None


def check_model(data: dict[str, Any], source: str) -> ModelLayer | None:
    """A file's [model] table, validated, and agreeing with that file's own sweep keys.

    Checked per file, before flags apply: `--preset deepseek-v3 --hidden 4096` is a
    deliberate override, not a contradiction. Needs no torch (the presets command uses it).
    """
    if "model" not in data:
        return None
    try:
        layer = ModelLayer.model_validate(data)
    except ValidationError as err:
        raise UsageError(describe_invalid(err, source)) from None
    if problem := layer.disagreement():
        raise UsageError(f"{source}: {problem}")
    return layer
