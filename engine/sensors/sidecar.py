"""A sensor's sidecar CSV in a recording folder: its name, its writer and its reader.

    sample,monotonic_ns,utc,frame,<fields...>

Values are written with repr(), so they read back exactly; rows are handed to the OS
about every FLUSH_INTERVAL_S and the file is fsynced on close.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TextIO

from engine.sensors.base import STAMP_COLUMNS, SensorError
from engine.utc import utc_iso

SIDECAR_FOLDER = "sensors"
FLUSH_INTERVAL_S = 0.5

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_sensor_name(name: str) -> None:
    """Raise SensorError unless name is safe as a file name (it names the sidecar file)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SensorError(
            f"sensor name {name!r} must be 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )


def sidecar_path(folder: Path, name: str) -> Path:
    """Where sensor `name` writes its samples in recording folder `folder`."""
    check_sensor_name(name)
    return Path(folder) / SIDECAR_FOLDER / f"{name}.csv"


class SidecarWriter:
    """Buffered CSV rows, flushed every FLUSH_INTERVAL_S and fsynced on close."""

    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Open for the recording's lifetime, closed by close().
        self._file: TextIO | None = open(self.path, "w", encoding="ascii", newline="")  # noqa: SIM115
        self._file.write(",".join(STAMP_COLUMNS + fields) + "\n")
        self._flushed_at = time.monotonic()

    def write(
        self, sample: int, monotonic_ns: int, utc_ns: int, frame: int, values: tuple[float, ...]
    ) -> None:
        assert self._file is not None
        text = ",".join(map(repr, values))
        self._file.write(f"{sample},{monotonic_ns},{utc_iso(utc_ns)},{frame},{text}\n")

    def flush_if_due(self) -> None:
        """Hand rows to the OS if the last flush was FLUSH_INTERVAL_S ago."""
        now = time.monotonic()
        if self._file is not None and now - self._flushed_at >= FLUSH_INTERVAL_S:
            self._file.flush()
            self._flushed_at = now

    def close(self) -> None:
        """Flush, fsync and close (idempotent)."""
        if self._file is None:
            return
        file, self._file = self._file, None
        with file:
            file.flush()
            os.fsync(file.fileno())


def read_sidecar(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header columns and complete rows (as strings) of a sidecar CSV.

    A last row cut short by a crash (no newline, or too few columns) is left out.
    """
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SensorError(f"cannot read sensor file {path}: {exc}") from exc
    lines = text.split("\n")
    header = lines[0].split(",")
    if tuple(header[: len(STAMP_COLUMNS)]) != STAMP_COLUMNS or len(lines) < 2:
        raise SensorError(f"sensor file {path}: header {lines[0]!r} does not start with "
                          f"{','.join(STAMP_COLUMNS)}")
    rows = [line.split(",") for line in lines[1:-1]]  # lines[-1]: after the last newline
    return header, [row for row in rows if len(row) == len(header)]
