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
from typing import Annotated, Any, Literal, get_args, get_origin

import typer
from pydantic import BaseModel, ByteSize

from commbench.config.settings import DEFAULT_CONFIG, SweepConfig, read_toml, split_list


@dataclass(frozen=True)
class Setting:
    path: tuple[str, ...]  # where it sits in the config: ("timing", "warmup")
    help: str
    is_list: bool  # given as `a,b,c`
    is_switch: bool  # a bool: the flag alone turns it on
    metavar: str = ""  # what the flag takes, in --help: INTS, FLOAT, NAME ...
    default: Any = None  # the model's own default (default.toml's wins in --help)

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
            found.append(
                Setting(
                    (*where, name),
                    field.description,
                    is_list,
                    annotation is bool,
                    metavar(annotation),
                    None if field.is_required() else field.default,
                )
            )
    return found


# The value a flag takes, by the type the model converts it to; a list is `a,b,c`.
METAVARS = {ByteSize: "SIZE", bool: "", int: "INT", float: "FLOAT", str: "TEXT"}


def metavar(annotation: Any) -> str:
    """`INTS` for list[PositiveInt], `FLOAT`, `SIZE`, `NAME` for a Literal (its help lists
    the names), `NAMES` for a list of them: the flags arrive as text, but --help says what
    they take."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "NAME"
    if origin is Annotated:
        return metavar(args[0])
    if origin is list:
        return f"{metavar(args[0])}S"
    if args:  # X | None
        return metavar(next(a for a in args if a is not type(None)))
    return next((name for kind, name in METAVARS.items() if issubclass(annotation, kind)), "TEXT")


def _shown(value: Any) -> str | None:
    """A default as the flag would be written; None where there is none to show."""
    if value is None or value == [] or isinstance(value, bool):
        return None
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _defaults() -> dict[tuple[str, ...], Any]:
    """default.toml's values by setting path: the base a sweep without --config starts from."""
    found: dict[tuple[str, ...], Any] = {}

    def walk(table: dict[str, Any], where: tuple[str, ...]) -> None:
        for name, value in table.items():
            if isinstance(value, dict):
                walk(value, (*where, name))
            else:
                found[(*where, name)] = value

    walk(read_toml(DEFAULT_CONFIG), ())
    return found


def parameters() -> list[inspect.Parameter]:
    """The settings as typer options: text (its metavar the type the model converts it
    to), or a switch; default.toml's value, or the model's, shown as the default."""
    defaults = _defaults()
    return [
        inspect.Parameter(
            setting.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                False if setting.is_switch else None,
                help=setting.help,
                metavar=setting.metavar or None,
                show_default=_shown(defaults.get(setting.path, setting.default)) or False,
            ),
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
