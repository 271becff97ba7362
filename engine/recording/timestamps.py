"""Per-camera timestamps file: one CSV row per frame in the video, in file order.

Videos carry only a nominal frame rate; these rows are the truth about when each
frame was grabbed, so they are written for every frame and fsync'd on close.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Literal, TextIO, TypedDict

import numpy as np

from engine.recording.errors import RecordingError
from engine.utc import utc_iso

StampColumn = Literal["before_grab_ns", "after_grab_ns", "after_retrieve_ns", "after_publish_ns"]
# Monotonic ns, in the order they are taken.
STAMP_COLUMNS: tuple[StampColumn, ...] = (
    "before_grab_ns",
    "after_grab_ns",
    "after_retrieve_ns",
    "after_publish_ns",
)
TIMESTAMP_COLUMNS = ("frame", *STAMP_COLUMNS, "utc")
_HEADER = ",".join(TIMESTAMP_COLUMNS) + "\n"



class TimestampColumns(TypedDict):
    """A timestamps file read back: one int64 array per number column, utc as text."""

    frame: np.ndarray
    before_grab_ns: np.ndarray
    after_grab_ns: np.ndarray
    after_retrieve_ns: np.ndarray
    after_publish_ns: np.ndarray
    utc: list[str]


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
        if self._file is None:
            raise RecordingError(f"timestamps file {self.path} is already closed")
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


def read_timestamps(path: Path) -> TimestampColumns:
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
    return {
        "frame": numbers[:, 0],
        "before_grab_ns": numbers[:, 1],
        "after_grab_ns": numbers[:, 2],
        "after_retrieve_ns": numbers[:, 3],
        "after_publish_ns": numbers[:, 4],
        "utc": [line.rpartition(",")[2] for line in lines],
    }
