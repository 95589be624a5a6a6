"""An experiment's design: what it runs and decides by, fixed before its first launch and
kept by `--resume` (experiment.json's "design"). One pydantic model, as the sweep's
settings are one (`SweepConfig`): a bad value is one line naming the flag and the value."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from commbench.analysis.ab import ALPHA, PLANNED_PAIRS, Design
from commbench.errors import UsageError, describe_invalid

PLACEHOLDER = "{command}"  # where a launcher template puts each rank's command


class ExperimentDesign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arms: list[dict[str, Any]]  # each arm's record (commbench.ab.arms.Arm.record)
    band: float = Field(default=0.05, gt=0)
    alpha: float = Field(default=ALPHA, gt=0, lt=1)
    min_pairs: int = Field(default=4, ge=2)  # an interval needs a spread
    max_pairs: int = 10
    planned_pairs: int | None = None  # the spending's horizon: min(max_pairs, 10) at the start
    seed: int
    nproc: int | None = Field(default=None, ge=1)
    launcher: str | None = None
    launch_timeout_s: float = Field(default=3600.0, gt=0)
    sweep_args: list[str] = []
    argv: list[str] = []

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentDesign:
        for name in ("min_pairs", "max_pairs"):
            if getattr(self, name) % 2:
                raise ValueError(
                    f"{name}: must be even: ABBA blocks cancel a linear drift over each two"
                )
        if self.planned_pairs is None:
            self.planned_pairs = min(self.max_pairs, PLANNED_PAIRS)
        if self.max_pairs < self.min_pairs:
            raise ValueError(f"max_pairs: must be at least --min-pairs {self.min_pairs}")
        if self.launcher is not None:
            if self.launcher.count(PLACEHOLDER) != 1:
                raise ValueError(
                    f"launcher: must hold {PLACEHOLDER} once, where each rank's command goes"
                )
            if self.nproc is not None:
                raise ValueError("nproc: not with --launcher (the launcher decides the ranks)")
        return self

    @classmethod
    def from_flags(cls, values: dict[str, Any]) -> ExperimentDesign:
        """The design from the command line's values (None: not given, the default)."""
        return _validated({k: v for k, v in values.items() if v is not None}, "ab")

    @classmethod
    def from_record(cls, record: dict[str, Any], source: str) -> ExperimentDesign:
        return _validated(record, source)

    def statistics(self) -> Design:
        """What the analysis decides by: the arms' names, the band, the looks, alpha."""
        names = [arm["name"] for arm in self.arms]
        horizon = self.planned_pairs or PLANNED_PAIRS
        return Design(names, self.band, self.min_pairs, self.max_pairs, self.alpha, horizon)


def _validated(values: dict[str, Any], source: str) -> ExperimentDesign:
    try:
        return ExperimentDesign.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        field = next((str(p) for p in first["loc"] if isinstance(p, str)), None)
        message = first["msg"].removeprefix("Value error, ")
        if field is None and ": " in message:  # a check across fields names its own
            field, message = message.split(": ", 1)
            raise UsageError(f"{_flag(field)}: {message} (got {values.get(field)!r})") from None
        raise UsageError(describe_invalid(err, source, _flag(field) if field else None)) from None


def _flag(field: str) -> str:
    return field.replace("_", "-")
