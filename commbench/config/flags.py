"""The sweep's flags, made from the config model: each setting is declared once.

A field of `SweepConfig` (or of a table in it: [timing], [moe]) that has a description
is a flag of `commbench sweep` named after the field, with the description as its help.
Adding a setting to the model adds its flag and its TOML key at once; docs/usage.md's
option table is held to the same list by tests/config/test_flags.py. Flags arrive as text
(a list as `a,b,c`) and the model converts them, so a bad flag and the same bad value in
a TOML file get the same one-line error.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, get_args, get_origin

import typer
from pydantic import BaseModel

from commbench.config.settings import SweepConfig, split_list


@dataclass(frozen=True)
class Setting:
    path: tuple[str, ...]  # where it sits in the config: ("timing", "warmup")
    help: str
    is_list: bool  # given as `a,b,c`
    is_switch: bool  # a bool: the flag alone turns it on

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _table(annotation: Any) -> type[BaseModel] | None:
    """The model of a TOML table field (`TimingConfig`, `MoeConfig | None`), else None."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def settings(model: type[BaseModel] = SweepConfig, where: tuple[str, ...] = ()) -> list[Setting]:
    """Every described field of `model` and of its tables, in declaration order."""
    found = []
    for name, field in model.model_fields.items():
        table = _table(field.annotation)
        if table is not None:
            found += settings(table, (*where, name))
        elif field.description:
            annotation = field.annotation
            is_list = any(get_origin(a) is list for a in (annotation, *get_args(annotation)))
            found.append(Setting((*where, name), field.description, is_list, annotation is bool))
    return found


def parameters() -> list[inspect.Parameter]:
    """The settings as typer options: text, or a switch."""
    return [
        inspect.Parameter(
            setting.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(False if setting.is_switch else None, help=setting.help),
            annotation=bool if setting.is_switch else str | None,
        )
        for setting in settings()
    ]


def overrides(values: dict[str, Any]) -> dict[str, Any]:
    """The flags' values as a config layer: None where a flag was not given."""
    layer: dict[str, Any] = {}
    for setting in settings():
        value = values[setting.name]
        if setting.is_switch:
            value = value or None  # not given: the layers below decide
        elif setting.is_list:
            value = split_list(value)
        table = layer
        for part in setting.path[:-1]:
            table = table.setdefault(part, {})
        table[setting.name] = value
    return layer
