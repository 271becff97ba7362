"""What is wrong in a rig and where: errors that name the file, the line and the key.

Checks raise `Problem` with a key path such as ("cameras", 1, "fps"); whoever knows the
origin (a file, or "<rig>" for data built in memory) and its text turns it into a
`RigError` reading `rig.toml:14: cameras[1].fps: must be ...`.
"""

from __future__ import annotations

import json
import re
from typing import Any

IN_MEMORY = "<rig>"

KeyPath = tuple[str | int, ...]


class RigError(ValueError):
    """A rig that cannot be used; the message names the file, the line if known, and the key."""


class RigWarning(UserWarning):
    """A rig that loads but says something the engine no longer uses; names file, line, key."""


class Problem(Exception):
    """What is wrong at a key path, raised before the origin and line numbers are known."""

    def __init__(self, path: KeyPath, text: str, lines_of: tuple[KeyPath, ...] = ()) -> None:
        super().__init__(text)
        self.path = path
        self.text = text
        self.lines_of = lines_of  # other places the message refers to, e.g. a repeated id

    def message(self, origin: str, lines: dict[KeyPath, int]) -> str:
        """The full message: origin, line, key and what is wrong."""
        line = _line_of(lines, self.path)
        where = f"{origin}:{line}" if line else origin
        text = self.text
        if self.lines_of:
            found = [_line_of(lines, path) for path in self.lines_of]
            places = (f"lines {found[0]} and {found[1]}" if all(found)
                      else " and ".join(key_name(path) for path in self.lines_of))
            text += f" ({places})"
        key = key_name(self.path)
        return f"{where}: {key}: {text}" if key else f"{where}: {text}"

    def error(self, origin: str, lines: dict[KeyPath, int]) -> RigError:
        return RigError(self.message(origin, lines))


def show(value: Any) -> str:
    """A value as it is written in TOML, for messages."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def key_name(path: KeyPath) -> str:
    """A key path as a message names it: cameras[1].settings.pattern."""
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            shown = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            name += f".{shown}" if name else shown
    return name


# --- where keys are in the file ----------------------------------------------------------

_KEY_PART = r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""
_HEADER = re.compile(rf"\s*(\[\[?)\s*((?:{_KEY_PART}|[ \t.])+?)\s*\]")
_ASSIGNMENT = re.compile(rf"\s*((?:{_KEY_PART}|[ \t.])+?)\s*=")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_lines(text: str | None) -> dict[KeyPath, int]:
    """The line of every table header and key, by a line scan: good enough for messages.

    Paths index arrays of tables, as in ("cameras", 1, "fps"); keys inside inline tables
    and arrays are not found (messages then give the line of the enclosing key).
    """
    lines: dict[KeyPath, int] = {}
    if not text:
        return lines
    counts: dict[KeyPath, int] = {}  # array-of-tables path -> index of its latest table
    table: KeyPath = ()
    in_string = False
    for number, line in enumerate(text.split("\n"), start=1):
        inside = in_string
        if (line.count('"""') + line.count("'''")) % 2:
            in_string = not in_string
        if inside:
            continue
        header = _HEADER.match(line)
        if header:
            table = _table_path(_key_parts(header.group(2)), header.group(1) == "[[", counts)
            lines.setdefault(table, number)
        elif assignment := _ASSIGNMENT.match(line):
            lines.setdefault(table + _key_parts(assignment.group(1)), number)
    return lines


def _key_parts(dotted: str) -> tuple[str, ...]:
    parts = re.findall(_KEY_PART, dotted)
    return tuple(part[1:-1] if part[0] in "\"'" else part for part in parts)


def _table_path(parts: tuple[str, ...], array: bool, counts: dict[KeyPath, int]) -> KeyPath:
    path: list[str | int] = []
    for position, part in enumerate(parts):
        path.append(part)
        key = tuple(path)
        if array and position == len(parts) - 1:
            counts[key] = counts.get(key, -1) + 1
        if key in counts:
            path.append(counts[key])
    return tuple(path)


def _line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of path, else of its nearest enclosing key or table."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
