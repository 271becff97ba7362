"""What one camera of a take can deliver: its video file's frames and its timestamp rows.

Reads the files as a crash or a full disk may have left them: a video file cut
anywhere (even inside its header), a timestamps row cut in half. Only the unbroken
run from the take's first frame counts, since frame k of the final file must be
frame first_frame + k.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from engine.recording import mkv_seal
from engine.recording.errors import RecordingError
from engine.recording.timestamps import TIMESTAMP_COLUMNS, columns_of

# Everything reading a damaged file can raise (av.FFmpegError covers av's EOFError);
# IndexError: a file without a video stream.
READ_ERRORS = (av.FFmpegError, OSError, EOFError, IndexError)


@dataclass
class CameraScan:
    id: str
    video: Path
    timestamps: Path
    layout: mkv_seal.MkvLayout | None  # None: no readable Matroska head
    rows: list[str]  # the unbroken run of complete timestamp rows, as written
    columns: tuple[str, ...]  # the timestamps file's layout (older files lack capture_ns)

    @property
    def frames(self) -> int:
        """Frames in whole clusters, in order from the first."""
        return len(self.layout.frames) if self.layout else 0

    @property
    def available(self) -> int:
        """Frames this camera has evidence of: one whose picture a crash lost still
        counts (as dropped) when its timestamp row survived, and vice versa."""
        return max(self.frames, len(self.rows))


def scan_camera(folder: Path, camera: dict[str, Any], first_frame: int, fps: float
                ) -> CameraScan:
    """Scan the video file and timestamps of one manifest camera entry."""
    timestamps = folder / camera["timestamps"]
    columns, rows = _timestamp_rows(timestamps, first_frame)
    video = folder / camera["file"]
    try:
        layout: mkv_seal.MkvLayout | None = mkv_seal.scan(video, fps)
    except (mkv_seal.MkvError, FileNotFoundError):
        layout = None  # died before its header was written: no frames
    except OSError as exc:
        raise RecordingError(f"cannot read video file {video}: {exc.strerror or exc}") from exc
    return CameraScan(camera["id"], video, timestamps, layout, rows, columns)


def decodable_frames(path: Path, layout: mkv_seal.MkvLayout, fps: float) -> int:
    """How many of the file's frames decode, checking the first frame and the run from
    the last keyframe on: what a crash or a power cut may have damaged is the tail (the
    rest was written whole before it), so stopping never decodes the whole take.

    The file must be sealed (its index lets the reader jump to the last keyframe)."""
    frames = len(layout.frames)
    last_key = max((k for k, frame in enumerate(layout.frames) if frame.keyframe), default=0)
    good = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            to_index = float(stream.time_base or 0) * fps
            for frame in container.decode(stream):
                if frame.is_corrupt:
                    return 0
                break
            else:
                return 0
            good = last_key
            seconds = layout.frames[last_key].time * layout.timestamp_scale_ns / 1e9
            container.seek(int(seconds / float(stream.time_base or 1)), stream=stream)
            for frame in container.decode(stream):
                index = round((frame.pts or 0) * to_index)
                if index < last_key:
                    continue
                if frame.is_corrupt or index != good:
                    break
                good += 1
    except READ_ERRORS:
        pass  # the frames before the failure decode
    return min(good, frames)


def _timestamp_rows(path: Path, first_frame: int) -> tuple[tuple[str, ...], list[str]]:
    """The file's columns and its complete rows for frames first_frame, first_frame + 1,
    ... in order.

    Tolerant where a crash leaves its marks: the rows end at a row cut in half (or any
    row that does not parse), and a file without a complete header has none.
    """
    try:
        text = path.read_bytes().decode("ascii", errors="replace")
    except OSError as exc:
        raise RecordingError(f"cannot read timestamps file {path}: {exc.strerror or exc}") from exc
    lines = text.split("\n")[:-1]  # what follows the last newline is an unfinished row
    if not lines:
        return TIMESTAMP_COLUMNS, []
    columns = columns_of(lines[0], path)
    rows: list[str] = []
    for line in lines[1:]:
        if not _is_row(line, first_frame + len(rows), columns):
            break
        rows.append(line)
    return columns, rows


def _is_row(line: str, frame: int, columns: tuple[str, ...]) -> bool:
    fields = line.split(",")
    if len(fields) != len(columns):
        return False
    utc = fields.pop(columns.index("utc"))
    if not utc.endswith("Z"):
        return False
    try:
        numbers = [int(field) for field in fields]
    except ValueError:
        return False
    return numbers[0] == frame
