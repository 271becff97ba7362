"""What one camera of a take can deliver: its video file's frames and its timestamp rows.

Reads the files as a crash or a full disk may have left them: a video file cut
anywhere (even inside its header), a timestamps row cut in half. Only the unbroken
run from the take's first frame counts, since frame k of the final file must be the
k-th frame number of the take's segments (engine/recording/segments.py: first_frame + k
for a take never paused; past a writing pause, the frame numbers jump over it, the same
rows in every camera), and its row's frame_index k.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from engine.recording import mkv_seal
from engine.recording.errors import RecordingError
from engine.recording.segments import Segment, frame_at, frame_numbers
from engine.recording.timestamps import INDEX_COLUMN, TIMESTAMP_COLUMNS, columns_of

# Everything reading a damaged file can raise (av.FFmpegError covers av's EOFError);
# IndexError: a file without a video stream.
READ_ERRORS = (av.FFmpegError, OSError, EOFError, IndexError)


@dataclass
class CameraScan:
    id: str
    video: Path
    timestamps: Path
    whole: int  # frames in whole clusters, in order from the first
    layout: mkv_seal.MkvLayout | None  # where they are; None for a cleanly closed file
    rows: list[str]  # the unbroken run of complete timestamp rows, as written
    columns: tuple[str, ...]  # the timestamps file's layout (older ones lack frame_index...)

    @property
    def available(self) -> int:
        """Frames this camera has evidence of: one whose picture a crash lost still
        counts (as dropped) when its timestamp row survived, and vice versa."""
        return max(self.whole, len(self.rows))

    def full_layout(self, fps: float) -> mkv_seal.MkvLayout:
        """Where every frame is (scanning a cleanly closed file now: it is to be cut)."""
        if self.layout is None:
            self.layout = mkv_seal.scan(self.video, fps)
        return self.layout


def scan_camera(folder: Path, camera: dict[str, Any], segments: list[Segment], fps: float
                ) -> CameraScan:
    """Scan the video file and timestamps of one manifest camera entry, whose rows must
    name the frame numbers of `segments` in order. A file FFmpeg closed cleanly (a stop)
    is counted from its end in constant time; any other (a crash, a full disk) is scanned
    cluster by cluster."""
    timestamps = folder / camera["timestamps"]
    columns, rows = _timestamp_rows(timestamps, segments)
    video = folder / camera["file"]
    layout: mkv_seal.MkvLayout | None = None
    try:
        whole = mkv_seal.closed_frames(video, fps)
        if whole is None:
            layout = mkv_seal.scan(video, fps)
            whole = len(layout.frames)
    except (mkv_seal.MkvError, FileNotFoundError):
        whole = 0  # died before its header was written: no frames
    except OSError as exc:
        raise RecordingError(f"cannot read video file {video}: {exc.strerror or exc}") from exc
    return CameraScan(camera["id"], video, timestamps, whole, layout, rows, columns)


def decodable_frames(path: Path, frames: int, fps: float) -> int:
    """How many of the file's first `frames` frames decode, checking the first frame and
    the run from the last one's keyframe on: what a crash or a power cut may have
    damaged is the tail (the rest was written whole before it), so stopping never
    decodes the whole take. The file must be indexed (sealed, or closed by FFmpeg)."""
    last = frames - 1
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            to_index = float(stream.time_base or 0) * fps
            first = next(container.decode(stream), None)
            if first is None or first.is_corrupt:
                return 0
            container.seek(int(last / fps / float(stream.time_base or 1)), stream=stream)
            good: int | None = None
            for frame in container.decode(stream):
                index = round((frame.pts or 0) * to_index)
                good = index if good is None else good  # the keyframe the seek landed on
                if frame.is_corrupt or index != good:
                    break
                good += 1
            return min(good or 0, frames)
    except READ_ERRORS:
        return 0  # not even the index reads: nothing is sure


def _timestamp_rows(path: Path, segments: list[Segment]) -> tuple[tuple[str, ...], list[str]]:
    """The file's columns and its complete rows for the frame numbers of `segments`, in
    order.

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
    rows = lines[1:]
    # The writer only appends, so an intact last row whose frame number matches its
    # place means every row before it is intact: a crash cuts the tail, and a power
    # cut's hole of zeros is a whole disk block, swallowing newlines and so places.
    last = len(rows) - 1
    if "\0" not in text and rows and _is_row(rows[-1], last, frame_at(segments, last),
                                             columns):
        return columns, rows
    rows = []
    for index, (line, frame) in enumerate(zip(lines[1:], frame_numbers(segments),
                                              strict=False)):
        if not _is_row(line, index, frame, columns):
            break
        rows.append(line)
    return columns, rows


def _is_row(line: str, index: int, frame: int | None, columns: tuple[str, ...]) -> bool:
    """A complete row of video frame `index` and frame number `frame` (None: no frame is
    due there); files written before frame_index do not say the index."""
    if frame is None:
        return False
    fields = line.split(",")
    if len(fields) != len(columns):
        return False
    if not fields[columns.index("utc")].endswith("Z"):
        return False
    try:
        numbers = {name: int(field) for name, field in zip(columns, fields, strict=True)
                   if name != "utc"}
    except ValueError:
        return False
    return numbers["frame"] == frame and numbers.get(INDEX_COLUMN, index) == index
