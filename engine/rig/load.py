"""Reading a rig file: its text checked against the schema before any process starts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from engine.rig.model import Rig, rig_from_dict
from engine.rig.problem import RigError


def load_rig(path: Path) -> Rig:
    """Read and check a rig file; raise RigError naming the file, line and key.

    The Rig keeps the file's text, so that saving it keeps the user's comments.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RigError(f"{path}: cannot read the rig file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RigError(f"{path}: not a text file (UTF-8): {exc.reason}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(str(path), exc) from None
    return rig_from_dict(data, str(path), text, base_dir=path.parent.absolute())


def _syntax_error(origin: str, exc: tomllib.TOMLDecodeError) -> RigError:
    position = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", str(exc), re.DOTALL)
    if position is None:
        return RigError(f"{origin}: invalid TOML: {exc}")
    message, line, column = position.groups()
    return RigError(f"{origin}:{line}: invalid TOML: {message[:1].lower()}{message[1:]} "
                    f"(column {column})")
