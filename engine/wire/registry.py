"""Typed messages with one name <-> type registry, checked when they cross a boundary.

A message is a frozen dataclass registered under its wire name. `to_wire` turns it into
a JSON-able dict; `from_wire` turns a dict back into the dataclass, refusing an unknown
name, a missing or unexpected field, or a value of the wrong type with a WireError that
names the message and the field. Field types are what JSON can carry: str, int, float,
bool, None, list[...], dict[str, ...], Any, and unions of those.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Generic, TypeVar, Union, get_args, get_origin


class WireError(ValueError):
    """A message that is not what the registry declares; the text says what is wrong."""


M = TypeVar("M")


class Registry(Generic[M]):
    """The messages of one kind (commands, events), by wire name."""

    def __init__(self, kind: str, tag: str) -> None:
        """`kind`: how errors name a message ("command"); `tag`: the key of its name."""
        self.kind = kind
        self.tag = tag
        self._types: dict[str, type[M]] = {}
        self._hints: dict[str, dict[str, Any]] = {}

    def register(self, name: str) -> typing.Callable[[type[M]], type[M]]:
        """Class decorator: declare a dataclass as the message called `name`."""

        def declare(cls: type[M]) -> type[M]:
            if name in self._types:
                raise TypeError(f"{self.kind} {name!r} is declared twice")
            if not dataclasses.is_dataclass(cls):
                raise TypeError(f"{cls.__name__} must be a dataclass")
            cls.NAME = name  # type: ignore[attr-defined]
            self._types[name] = cls
            return cls

        return declare

    def names(self) -> list[str]:
        return sorted(self._types)

    def type_of(self, name: str) -> type[M]:
        try:
            return self._types[name]
        except KeyError:
            raise WireError(f"unknown {self.kind} {name!r}") from None

    def fields(self, name: str) -> dict[str, Any]:
        """Field name -> type hint of message `name`."""
        if name not in self._hints:
            cls = self.type_of(name)
            hints = typing.get_type_hints(cls)
            self._hints[name] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return self._hints[name]

    def to_wire(self, message: M) -> dict[str, Any]:
        """{tag: name, **fields}; nested values are copied as they are (JSON-able)."""
        name = typing.cast(str, message.NAME)  # type: ignore[attr-defined]
        values = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}  # type: ignore[arg-type]
        return {self.tag: name, **values}

    def from_wire(self, data: Any, name: str | None = None) -> M:
        """The message a dict describes (its name under `tag`, or `name` given apart)."""
        if not isinstance(data, dict):
            raise WireError(f"a {self.kind} must be a JSON object")
        values = dict(data)
        if name is None:
            name = values.pop(self.tag, None)
            if not isinstance(name, str):
                raise WireError(f"a {self.kind} needs a string {self.tag!r}")
        cls = self.type_of(name)
        declared = self.fields(name)
        unexpected = sorted(set(values) - set(declared))
        if unexpected:
            raise WireError(f"{self.kind} {name!r} has no field {', '.join(map(repr, unexpected))}"
                            f" (fields: {', '.join(declared) or 'none'})")
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            required = (field.default is dataclasses.MISSING
                        and field.default_factory is dataclasses.MISSING)
            if field.name not in values:
                if required:
                    raise WireError(f"{self.kind} {name!r} needs {field.name!r}")
                continue
            hint = declared[field.name]
            if not _conforms(values[field.name], hint):
                raise WireError(
                    f"{self.kind} {name!r}: {field.name!r} must be {_describe(hint)},"
                    f" not {type(values[field.name]).__name__}"
                )
        return cls(**values)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a decoded JSON value fits the type hint (ints pass for floats)."""
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, arm) for arm in get_args(hint))
    if origin is list or origin is tuple:
        arms = get_args(hint)
        return isinstance(value, (list, tuple)) and (
            not arms or all(_conforms(item, arms[0]) for item in value))
    if origin is dict:
        arms = get_args(hint)
        return isinstance(value, dict) and all(isinstance(k, str) for k in value) and (
            not arms or all(_conforms(item, arms[1]) for item in value.values()))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    if hint is type(None):
        return "null"
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arm) for arm in get_args(hint))
    if origin is list or origin is tuple:
        return "a list"
    if origin is dict or hint is dict:
        return "an object"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint)))


class Message:
    """Base of every registered message; NAME is set by Registry.register."""

    NAME: ClassVar[str]
