"""Saving a rig: its values written into the file it came from, comments and all.

A rig loaded from a file keeps that file's text; saving parses it with tomlkit and
changes only what differs: a value the file already says (even spelt differently, such
as `fps = 30` or a relative output folder) is left as written, options still at their
default that the file does not mention stay unmentioned, cameras and sensors are matched
by id and name so their tables keep their comments, retired keys are dropped. A rig built
in memory is written as a fresh document with every option and its help as a comment.
"""

from __future__ import annotations

import os
import secrets
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, InlineTable, Item, Table, Whitespace

from engine.durable import fsync_path
from engine.option import declared
from engine.rig.model import DEFAULT_RIG_NAME, Rig, rig_from_dict, sections
from engine.rig.problem import Problem, RigError
from engine.rig.schema import check_option, file_value, read_source, source_in
from engine.specs import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH, CameraSpec

FRESH_HEADER = ("A rig file: the cameras of a workstation and how it records.",
                "Start the engine with it: recorder-engine serve --rig FILE",
                "resources/demo-rig.toml explains every key; comments here are kept on save.")


def save_rig(rig: Rig, path: Path) -> None:
    """Write rig as a TOML file, atomically: a crash leaves the old file or the new one.

    The real sources are written (with any password: this is the user's file); the file
    keeps its permissions. A rig that would not load back equal is refused with RigError.
    """
    path = Path(path)
    folder = path.parent.absolute()
    text = rig_text(rig, folder)
    saved = rig_from_dict(tomllib.loads(text), str(path), text, base_dir=folder)
    if saved != rig:
        raise RigError(f"{path}: the rig would not load back as it is; not saved")
    temporary = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temporary, "x", encoding="utf-8") as file:
            if path.exists():
                os.chmod(file.fileno(), stat.S_IMODE(path.stat().st_mode))
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_path(folder)


def rig_text(rig: Rig, folder: Path) -> str:
    """The rig as TOML for a file in folder: its own file's text updated, or a fresh one."""
    fresh = rig.file_text is None
    document = tomlkit.document() if fresh else tomlkit.parse(rig.file_text or "")
    if fresh:
        for line in FRESH_HEADER:
            document.add(tomlkit.comment(line))
        document.add(tomlkit.nl())
    _put(document, "name", rig.name, rig.name == DEFAULT_RIG_NAME and not fresh,
         lambda raw: raw == rig.name)
    for key in sections():
        _write_section(document, key, getattr(rig, key), folder, fresh)
    cameras = [_camera_fields(index, spec, folder) for index, spec in enumerate(rig.cameras)]
    _write_tables(document, "cameras", [spec.camera_id for spec in rig.cameras], cameras,
                  [spec.settings for spec in rig.cameras], fresh,
                  lambda table, index: table.get("id", f"cam{index}"))
    sensors = [[("name", spec.name, False, _equal(spec.name)),
                ("source", spec.source, False, _equal(spec.source))] for spec in rig.sensors]
    _write_tables(document, "sensors", [spec.name for spec in rig.sensors], sensors,
                  [spec.settings for spec in rig.sensors], fresh,
                  lambda table, index: table.get("name"))
    return tomlkit.dumps(document)


# A key of a table to write: (key, value as the file has it, whether it is the default,
# whether the file's raw value already says it).
Entry = tuple[str, Any, bool, Callable[[Any], bool]]


def _write_section(document: Container, key: str, options: Any, folder: Path,
                   fresh: bool) -> None:
    found = document.get(key)
    new_table = tomlkit.table()
    table = found if isinstance(found, Table | InlineTable) else new_table
    for declared_option in declared(type(options)):
        value, help = getattr(options, declared_option.name), declared_option.option.help
        if fresh:  # every option, its help on the line above
            table.add(tomlkit.comment(help))
            if value is None:
                table.add(tomlkit.comment(f"{declared_option.key} is not set"))

        def says(raw: Any, declared_option: Any = declared_option, value: Any = value) -> bool:
            try:
                path = (key, declared_option.key)
                return bool(check_option(path, declared_option, raw, folder) == value)
            except Problem:
                return False

        _put(table, declared_option.key, file_value(value),
             value == declared_option.default and not fresh, says, None if fresh else help,
             at_end=fresh)
    for retired in getattr(type(options), "retired", {}):
        if retired in table:
            table.remove(retired)
    if table is new_table and len(new_table):
        if found is not None:
            document.remove(key)
        _add_table(document, key, new_table)


def _camera_fields(index: int, spec: CameraSpec, folder: Path) -> list[Entry]:
    def says_source(raw: Any) -> bool:
        try:
            return read_source(("cameras", index, "source"), raw, folder) == spec.source
        except Problem:
            return False

    return [
        ("id", spec.camera_id, spec.camera_id == f"cam{index}", _equal(spec.camera_id)),
        ("source", source_in(folder, spec.source), False, says_source),
        ("width", spec.width, spec.width == DEFAULT_WIDTH, _equal(spec.width)),
        ("height", spec.height, spec.height == DEFAULT_HEIGHT, _equal(spec.height)),
        ("fps", spec.fps, spec.fps == DEFAULT_FPS, _equal(spec.fps)),
    ]


def _write_tables(document: Container, key: str, identities: list[str],
                  entries: list[list[Entry]], settings: list[dict[str, Any]], fresh: bool,
                  identity: Callable[[Table, int], Any]) -> None:
    """[[key]] tables in the rig's order, reusing the file's table of the same identity."""
    found = document.get(key)
    file_aot = found if isinstance(found, AoT) else None
    tables = list(file_aot) if file_aot is not None else []
    known = {identity(table, index): table for index, table in enumerate(tables)}
    wanted = [known.get(name) for name in identities]
    kept = [table for table in wanted if table is not None]
    in_file_order = [table for table in tables if any(table is k for k in kept)]
    in_place = file_aot is not None and all(a is b for a, b in zip(in_file_order, kept,
                                                                     strict=True))
    aot = file_aot if in_place and file_aot is not None else tomlkit.aot()
    if in_place:  # the usual case: comments between the tables stay where they are
        for index in reversed(range(len(tables))):
            if not any(tables[index] is table for table in kept):
                if index > 0:
                    _move_closing_comments(tables[index], tables[index - 1])
                del aot[index]
    for index, table in enumerate(wanted):
        new = table is None
        table = tomlkit.table() if table is None else table
        for name, value, default, says in entries[index]:
            _put(table, name, value, default and not (fresh or new), says)
        _write_settings(table, settings[index])
        if new or not in_place:
            aot.append(table)
    if (in_place and not identities) or (not in_place and found is not None):
        document.remove(key)
    if not in_place and identities:
        if key == "cameras":
            _add_table(document, key, aot)
        else:  # sensors: last, as the demo rig has them
            document.add(key, aot)


def _move_closing_comments(removed: Table, into: Table) -> None:
    """The comments that close a removed table after a blank line (such as the demo
    rig's examples after its last camera) are about the file, not that table: keep them."""
    body = _last_container(removed).body
    keyed = [index for index, (key, _) in enumerate(body) if key is not None]
    after = keyed[-1] + 1 if keyed else 0
    blank = next((index for index in range(after, len(body))
                  if isinstance(body[index][1], Whitespace)), None)
    if blank is None:
        return
    target = _last_container(into)
    for _, item in body[blank:]:
        target.append(None, item)


def _last_container(table: Table) -> Container:
    """Where a table's text ends: in its last sub-table, e.g. [cameras.settings]."""
    container = table.value
    while container.body and isinstance(container.body[-1][1], Table):
        container = container.body[-1][1].value
    return container


def _write_settings(table: Table, settings: dict[str, Any]) -> None:
    found: Any = table.get("settings")
    if not settings:
        if found is not None:
            table.remove("settings")
        return
    if not isinstance(found, Table | InlineTable):
        if found is not None:
            table.remove("settings")
        found = tomlkit.table()
        _add_key(table, "settings", found)
    for key in [key for key in found if key not in settings]:
        found.remove(key)
    for key, value in settings.items():
        _put(found, key, value, False, _equal(value))


def _equal(value: Any) -> Callable[[Any], bool]:
    """Whether a raw file value is value (true is not 1, though Python says so)."""
    return lambda raw: raw == value and isinstance(raw, bool) == isinstance(value, bool)


def _put(container: Container | Table | InlineTable, key: str, value: Any, default: bool,
         says: Callable[[Any], bool], help: str | None = None, at_end: bool = False) -> None:
    """Set key to value unless the file already says it; a default the file does not
    mention stays unmentioned; None removes the key. A new key goes after the last key
    (not after the comments that trail it) unless at_end."""
    if key in container:
        if value is None:
            container.remove(key)
        elif not says(_raw(container[key])):
            container[key] = value
    elif value is not None and not default:
        item = tomlkit.item(value)
        if help and not isinstance(container, InlineTable):
            item.comment(help)
        if at_end:
            container.add(key, item)
        else:
            _add_key(container, key, item)


def _raw(item: Any) -> Any:
    return item.unwrap() if isinstance(item, Item) else item


def _add_key(container: Container | Table | InlineTable, key: str, item: Item) -> None:
    """A new key (or sub-table) after the last key, not after the comments that trail
    it; else before the first table, as a key after a table header would belong to it."""
    body = container.value if isinstance(container, Table | InlineTable) else container
    keys = [index for index, (k, v) in enumerate(body.body)
            if k is not None and not isinstance(v, Table | AoT)]
    tables = [index for index, (k, v) in enumerate(body.body) if isinstance(v, Table | AoT)]
    if keys and keys[-1] + 1 < len(body.body):
        body._insert_at(keys[-1] + 1, key, item)
    elif keys:
        container.add(key, item)
    elif tables:
        body._insert_at(tables[0], key, item)
    else:
        container.add(key, item)


def _add_table(document: Container, key: str, item: Table | AoT) -> None:
    """A new table before the file's [[cameras]] and [[sensors]], as a person writes it."""
    arrays = [index for index, (k, v) in enumerate(document.body)
              if k is not None and isinstance(v, AoT)]
    if arrays:
        if isinstance(item, Table):
            item.add(tomlkit.nl())  # a blank line before the [[cameras]] that follow
        document._insert_at(arrays[0], key, item)
    else:
        document.add(key, item)
