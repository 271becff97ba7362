"""Per-camera timestamps file: one CSV row per frame in the video, in file order.

Videos carry only a nominal frame rate; these rows are the truth about when each
frame was captured and grabbed, so they are written for every frame and fsync'd on close.
Two numbers name a row's frame: `frame_index`, its place in this camera's video (0, 1,
2, ...), and `frame`, the capture group's frame-set number, which counts from when the
cameras started rather than from the take and is the same in every camera's file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Final, Literal, NotRequired, TextIO, TypedDict, cast

import numpy as np

from engine import machine_clock
from engine.recording.errors import RecordingError
from engine.utc import utc_iso

StampColumn = Literal["before_grab_ns", "after_grab_ns", "after_retrieve_ns", "after_publish_ns"]
# Monotonic ns, in the order the camera process takes them.
STAMP_COLUMNS: tuple[StampColumn, ...] = (
    "before_grab_ns",
    "after_grab_ns",
    "after_retrieve_ns",
    "after_publish_ns",
)
# When the source captured the frame (monotonic ns; the manifest's capture_clock says
# which clock). It came after the other stamps: the columns before it keep their place,
# and utc stays last.
CAPTURE_COLUMN = "capture_ns"
# 1 where the camera had no new frame for the frame set and its previous one was used
# again (its capture_ns repeats too); 0 for a new frame.
REPEAT_COLUMN = "repeat"
# The camera's own frame counter (a machine-vision camera's BlockID: consecutive for a
# triggered camera unless it lost an exposure) and clock (ns); -1 where it reports none.
DEVICE_COLUMNS = ("device_frame", "device_ns")
# The frame's place in its camera's video file: row k of the file is video frame k.
INDEX_COLUMN: Final = "frame_index"
TIMESTAMP_COLUMNS = (INDEX_COLUMN, "frame", *STAMP_COLUMNS, CAPTURE_COLUMN, REPEAT_COLUMN,
                     *DEVICE_COLUMNS, "utc")
# Earlier layouts still read, assemble and verify: files recorded before frame_index,
# before the device columns, before repeat, and before capture_ns.
DEVICE_TIMESTAMP_COLUMNS = TIMESTAMP_COLUMNS[1:]
REPEAT_TIMESTAMP_COLUMNS = ("frame", *STAMP_COLUMNS, CAPTURE_COLUMN, REPEAT_COLUMN, "utc")
CAPTURE_TIMESTAMP_COLUMNS = ("frame", *STAMP_COLUMNS, CAPTURE_COLUMN, "utc")
OLD_TIMESTAMP_COLUMNS = ("frame", *STAMP_COLUMNS, "utc")
TIMESTAMP_LAYOUTS = (TIMESTAMP_COLUMNS, DEVICE_TIMESTAMP_COLUMNS, REPEAT_TIMESTAMP_COLUMNS,
                     CAPTURE_TIMESTAMP_COLUMNS, OLD_TIMESTAMP_COLUMNS)
_HEADER = ",".join(TIMESTAMP_COLUMNS) + "\n"
_MONOTONIC = "this machine's monotonic clock (CLOCK_MONOTONIC: ns since boot, the same in " \
             "every camera's file and the sensors' monotonic_ns)"
# What each column holds, for the README.txt of every recording folder.
COLUMN_MEANINGS: dict[str, str] = {
    INDEX_COLUMN: "the frame's place in this camera's video file: 0, 1, 2, ... (row k is "
                  "video frame k; its time in the video is frame_index / fps)",
    "frame": "the capture group's frame-set number: the same in every camera's file for "
             "the same frame set. It counts from when the cameras started, not from the "
             "take, and jumps over a writing pause (recording.json's segments)",
    "before_grab_ns": f"just before the camera process asked its source for the frame: "
                      f"{_MONOTONIC}",
    "after_grab_ns": "once the source had handed the frame over (same clock, ns)",
    "after_retrieve_ns": "once the picture (or the copied packet) was taken out of the "
                         "source (same clock, ns)",
    "after_publish_ns": "once the frame was in the shared-memory ring for the writer "
                        "(same clock, ns)",
    CAPTURE_COLUMN: "when the frame was captured (same clock, ns); the camera's "
                    "capture_clock in recording.json says where that time comes from",
    REPEAT_COLUMN: "1: the camera had no new frame for this frame set and its previous one "
                   "was used again (capture_ns repeats too); 0: a new frame",
    "device_frame": "the camera's own frame counter (a machine-vision camera's BlockID); "
                    "-1 where the camera reports none",
    "device_ns": "the camera's own clock (ns, the camera's own origin; sync_report.json's "
                 "device_clocks maps it onto the monotonic clock); -1 where it has none",
    "utc": "wall-clock time (UTC, ISO 8601, microseconds) read right after after_grab_ns",
}


class TimestampColumns(TypedDict):
    """A timestamps file read back: one int64 array per number column, utc as text;
    frame_index, capture_ns, repeat and the device columns only when the file has them."""

    frame: np.ndarray
    before_grab_ns: np.ndarray
    after_grab_ns: np.ndarray
    after_retrieve_ns: np.ndarray
    after_publish_ns: np.ndarray
    utc: list[str]
    capture_ns: NotRequired[np.ndarray]
    repeat: NotRequired[np.ndarray]
    device_frame: NotRequired[np.ndarray]
    device_ns: NotRequired[np.ndarray]
    frame_index: NotRequired[np.ndarray]


def columns_of(header: str, path: Path) -> tuple[str, ...]:
    """The columns a header line names, in file order; RecordingError naming the file
    unless it is the current layout or an earlier one."""
    for columns in TIMESTAMP_LAYOUTS:
        if header == ",".join(columns):
            return columns
    raise RecordingError(
        f"timestamps file {path}: header is {header!r}, expected {_HEADER.strip()!r}"
    )


def utc_field(columns: tuple[str, ...], row: str) -> str:
    """The utc text of one row of a file with these columns."""
    return row.split(",")[columns.index("utc")]


class TimestampWriter:
    """Append one row per written frame; buffered, so a row costs a few microseconds.
    `rows` counts them and is the next row's frame_index: the recording writer puts
    each frame in the video and its row here, in the same order."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows = 0
        self._shift_ns = machine_clock.offset_ns()
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
        capture_ns: int | None = None,
        repeat: bool = False,
        device_frame: int = -1,
        device_ns: int = -1,
    ) -> None:
        """One row; capture_ns None (the source cannot tell): the after-grab stamp. The
        stamps are time.monotonic_ns's; the row holds them on the machine's clock."""
        captured = after_grab_ns if capture_ns is None else capture_ns
        shift = self._shift_ns
        row = (
            f"{self.rows},{frame},{before_grab_ns + shift},{after_grab_ns + shift},"
            f"{after_retrieve_ns + shift},{after_publish_ns + shift},{captured + shift},"
            f"{int(repeat)},{device_frame},{device_ns},{utc_iso(utc_ns)}\n"
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
    """Columns of a timestamps file (any layout): int64 arrays, and utc as a list of str."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"cannot read timestamps file {path}: {exc}") from exc
    header, _, body = text.partition("\n")
    columns = columns_of(header, path)
    number_at = [position for position, name in enumerate(columns) if name != "utc"]
    lines = body.splitlines()
    if not lines:
        numbers = np.empty((0, len(number_at)), np.int64)
    else:
        try:
            numbers = np.loadtxt(
                io.StringIO(body), delimiter=",", usecols=number_at, dtype=np.int64, ndmin=2
            )
        except ValueError as exc:
            raise RecordingError(f"timestamps file {path}: {exc}") from exc
    by_name = {columns[at]: numbers[:, k] for k, at in enumerate(number_at)}
    utc = [utc_field(columns, line) for line in lines]
    return cast(TimestampColumns,
                {name: utc if name == "utc" else by_name[name] for name in columns})
