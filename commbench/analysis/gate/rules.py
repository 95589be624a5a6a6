"""Per-row tolerances from a TOML rules file: patterns over a row's key.

    detect = 1.25                                       # the shift the gate must see
    [[rules]]
    tolerance = 0.25
    match = { collective = "all_*", bytes = "<65536" }   # small messages are noisier

Strings match with shell wildcards (fnmatch); numbers with `N`, `<N`, `<=N`, `>N`,
`>=N`. A rule applies when all its fields match. When several apply, the largest
tolerance wins; when none does, the default does. `detect` (a ratio above 1) is the
shift the gate must be able to see, as `--detect` gives it; the flag wins.
"""

from __future__ import annotations

import operator
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from commbench.config.settings import read_toml
from commbench.errors import UsageError, describe_invalid
from commbench.rundir.schema import KEY_COLUMNS

MATCHABLE = (*KEY_COLUMNS, "bytes")
COMPARISON = re.compile(r"^\s*(<=|>=|<|>|==)?\s*(\d+)\s*$")
OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _field_matches(pattern: str | int, value: Any) -> bool:
    if isinstance(value, str):
        return fnmatchcase(value, str(pattern))
    comparison = COMPARISON.match(str(pattern))
    if comparison is None:
        return False
    op, number = comparison.groups()
    return OPERATORS.get(op or "==", operator.eq)(value, int(number))


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tolerance: float = Field(gt=0)
    match: dict[str, str | int]

    @field_validator("match")
    @classmethod
    def _known_fields(cls, match: dict[str, str | int]) -> dict[str, str | int]:
        for name in match:
            if name not in MATCHABLE:
                raise ValueError(f"cannot match on {name!r}, only on {list(MATCHABLE)}")
        return match

    def applies(self, row: dict[str, Any]) -> bool:
        return all(_field_matches(pattern, row[name]) for name, pattern in self.match.items())


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detect: float | None = Field(default=None, gt=1)
    rules: list[Rule] = []

    def tolerance(self, row: dict[str, Any], default: float) -> float:
        matching = [rule.tolerance for rule in self.rules if rule.applies(row)]
        return max(matching) if matching else default

    def check_used(self, rows: list[dict[str, Any]]) -> None:
        """Refuse a rule that applies to none of `rows`: it changes nothing, most often
        because of a typo (`all-gather`, `tp = "> 4"` on a 4-rank run)."""
        for number, rule in enumerate(self.rules, 1):
            if not any(rule.applies(row) for row in rows):
                raise UsageError(
                    f"rules: rule {number} (match {rule.match}) matches no row of these runs:"
                    " it would change nothing; fix its patterns or remove it"
                )


def load_rules(path: Path | None) -> Rules:
    if path is None:
        return Rules()
    try:
        return Rules.model_validate(read_toml(path, "rules"))
    except ValidationError as err:
        raise UsageError(describe_invalid(err, f"rules {path}")) from None
