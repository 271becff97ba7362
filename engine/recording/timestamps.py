"""Per-camera timestamps file: one CSV row per frame in the video, in file order.

Videos carry only a nominal frame rate; these rows are the truth about when each
frame was grabbed, so they are written for every frame and fsync'd on close.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TextIO

import numpy as np

from engine.recording.errors import RecordingError
from engine.utc import utc_iso

TIMESTAMP_COLUMNS = (
    "frame",
    "before_grab_ns",
    "after_grab_ns",
    "after_retrieve_ns",
    "after_publish_ns",
    "utc",
)
STAMP_COLUMNS = TIMESTAMP_COLUMNS[1:5]  # monotonic ns, in the order they are taken
_HEADER = ",".join(TIMESTAMP_COLUMNS) + "\n"



class TimestampWriter:
    """Append one row per written frame; buffered, so a row costs a few microseconds."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows = 0
        try:
            self.path.parent.mkdir(exist_ok=True)
            # Open for the writer's lifetime, closed by close().
            self._file: TextIO | None = open(  # noqa: SIM115
                self.path, "w", encoding="ascii", newline=""
            )
            self._file.write(_HEADER)
        except OSError as exc:
            raise self._error("cannot create", exc) from exc

    def write(
        self,
        frame: int,
        before_grab_ns: int,
        after_grab_ns: int,
        after_retrieve_ns: int,
        after_publish_ns: int,
        utc_ns: int,
    ) -> None:
        row = (
            f"{frame},{before_grab_ns},{after_grab_ns},{after_retrieve_ns},{after_publish_ns},"
            f"{utc_iso(utc_ns)}\n"
        )
        try:
            self._file.write(row)
        except OSError as exc:
            raise self._error("cannot write to", exc) from exc
        self.rows += 1

    def sync(self) -> None:
        """Flush and fsync: the rows so far survive a power cut too."""
        self.flush()
        if self._file is not None:
            try:
                os.fsync(self._file.fileno())
            except OSError as exc:
                raise self._error("cannot write to", exc) from exc

    def flush(self) -> None:
        """Hand buffered rows to the OS (survives a process crash, not a power cut)."""
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                raise self._error("cannot write to", exc) from exc

    def close(self) -> None:
        """Flush and fsync, then close (idempotent)."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            with file:
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            raise self._error("cannot finish", exc) from exc

    def __enter__(self) -> TimestampWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _error(self, action: str, exc: OSError) -> RecordingError:
        return RecordingError(f"{action} timestamps file {self.path}: {exc.strerror or exc}")


def read_timestamps(path: Path) -> dict[str, np.ndarray | list[str]]:
    """Columns of a timestamps file: int64 arrays, and utc as a list of str."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"cannot read timestamps file {path}: {exc}") from exc
    header, _, body = text.partition("\n")
    if header + "\n" != _HEADER:
        raise RecordingError(
            f"timestamps file {path}: header is {header!r}, expected {_HEADER.strip()!r}"
        )
    lines = body.splitlines()
    if not lines:
        numbers = np.empty((0, len(STAMP_COLUMNS) + 1), np.int64)
    else:
        try:
            numbers = np.loadtxt(
                io.StringIO(body), delimiter=",", usecols=range(5), dtype=np.int64, ndmin=2
            )
        except ValueError as exc:
            raise RecordingError(f"timestamps file {path}: {exc}") from exc
    columns: dict[str, np.ndarray | list[str]] = {
        name: numbers[:, i] for i, name in enumerate(TIMESTAMP_COLUMNS[:5])
    }
    columns["utc"] = [line.rpartition(",")[2] for line in lines]
    return columns
