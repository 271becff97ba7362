"""Options declared once: a dataclass field carries its file key, help text and limits.

The rig file's sections (`[recording]`, `[device]`, `[supervisor]`) are dataclasses whose
fields carry `option()` metadata; the rig reads, checks, saves and summarises them from
this metadata and the field's type alone, so an option is added or removed in one place.
It sits at the bottom of the layers so that any layer's settings (the supervisor's
`Policy`) can declare themselves without importing the rig.
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, Field, dataclass, fields
from typing import Any

_METADATA_KEY = "option"


@dataclass(frozen=True)
class Option:
    """What a rig file may say for one field; None means no such limit."""

    help: str
    key: str | None = None  # the key in the file, when it differs from the field name
    above: float | None = None  # a number must be greater than this
    minimum: float | None = None  # ... at least this
    maximum: float | None = None  # ... at most this
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # a regular expression each string of a list must match
    pattern_name: str = ""  # how a message names the pattern, e.g. '"host:port"'
    at_least: str | None = None  # another field of the section this one may not be below
    at_most: str | None = None  # ... may not be above


@dataclass(frozen=True)
class Declared:
    """One option of a section: its field name, file key, resolved type and default."""

    name: str
    key: str
    kind: Any  # the field's type, resolved: float, int, bool, str, Path, float | None ...
    option: Option
    default: Any


def option(help: str, **limits: Any) -> dict[str, Option]:
    """A field's metadata: `field(default=1.0, metadata=option("what it does", above=0))`.

    limits are Option's fields; a misspelt one is a TypeError at import.
    """
    return {_METADATA_KEY: Option(help, **limits)}


def declared(section: type) -> list[Declared]:
    """The options of a section dataclass, in field order; every field must be one."""
    hints = typing.get_type_hints(section)
    result = []
    for item in fields(section):
        found = item.metadata.get(_METADATA_KEY)
        if not isinstance(found, Option):
            raise TypeError(f"{section.__name__}.{item.name} is not declared with option()")
        result.append(Declared(item.name, found.key or item.name, hints[item.name], found,
                               _default(item)))
    return result


def _default(item: Field[Any]) -> Any:
    if item.default_factory is not MISSING:
        return item.default_factory()
    return item.default
