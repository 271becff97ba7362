"""What one camera of a chunked recording can deliver: its frames and timestamp rows.

Reads the chunks and the timestamps file as a crash may have left them: a `.part`
chunk cut anywhere, a missing chunk, a timestamps row cut in half. Only the
unbroken run from the recording's first frame counts, since frame k of the
final file must be frame first_frame + k.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import av

from engine.recording.errors import RecordingError
from engine.recording.timestamps import TIMESTAMP_COLUMNS, columns_of

CHUNKS_FOLDER = "chunks"
# Everything reading a damaged file can raise (av.FFmpegError covers av's EOFError);
# IndexError: a file without a video stream.
READ_ERRORS = (av.FFmpegError, OSError, EOFError, IndexError)
_CHUNK_NAME = re.compile(r"(\d+)\.mkv(\.part)?")


class StreamFormat(NamedTuple):
    """What must match between chunks for their packets to join without re-encoding."""

    codec: str
    width: int
    height: int
    pixel_format: str | None
    extradata: bytes


@dataclass
class Chunk:
    path: Path
    frames: int  # frames to take from it: all of a finished chunk, the decodable ones of a .part


@dataclass
class CameraScan:
    id: str
    chunks: list[Chunk]  # the unbroken run of chunks from the first frame on
    rows: list[str]  # the unbroken run of complete timestamp rows, as written
    columns: tuple[str, ...]  # the timestamps file's layout (older files lack capture_ns)

    @property
    def frames(self) -> int:
        return sum(chunk.frames for chunk in self.chunks)

    @property
    def usable(self) -> int:
        """Frames with both a decodable picture and a timestamp row."""
        return min(self.frames, len(self.rows))

    @property
    def available(self) -> int:
        """Frames this camera has evidence of: one whose picture a crash lost still
        counts (as dropped) when its timestamp row survived, and vice versa."""
        return max(self.frames, len(self.rows))


def scan_camera(
    folder: Path, camera: dict[str, Any], first_frame: int, chunk_frames: int
) -> CameraScan:
    """Scan the chunks and timestamps of one manifest camera entry."""
    columns, rows = _timestamp_rows(folder / camera["timestamps"], first_frame)
    return CameraScan(
        camera["id"], _usable_chunks(folder / CHUNKS_FOLDER / camera["id"], chunk_frames),
        rows, columns,
    )


def _chunk_files(chunk_folder: Path) -> dict[int, Path]:
    """index -> chunk file; a finished chunk wins over a stray .part of the same index."""
    files: dict[int, Path] = {}
    if not chunk_folder.is_dir():
        return files
    for path in sorted(chunk_folder.iterdir(), key=lambda p: p.name.endswith(".part")):
        match = _CHUNK_NAME.fullmatch(path.name)
        if match:
            files.setdefault(int(match[1]), path)
    return files


def _usable_chunks(chunk_folder: Path, chunk_frames: int) -> list[Chunk]:
    """The chunks holding frames 0, 1, 2 ... without a gap: a missing index, or a chunk
    short of chunk_frames that is not the last, ends the run."""
    files = _chunk_files(chunk_folder)
    chunks: list[Chunk] = []
    first_format: StreamFormat | None = None
    for index in range(len(files)):
        path = files.get(index)
        if path is None:
            break
        frames, found_format = _count_frames(path, decode=path.name.endswith(".part"))
        if frames > chunk_frames:
            raise RecordingError(f"chunk {path} holds {frames} frames, more than {chunk_frames}")
        if frames == 0 or found_format is None:
            break
        if first_format is None:
            first_format = found_format
        elif found_format != first_format:
            raise RecordingError(
                f"chunk {path} is encoded differently from {chunks[0].path.name} "
                f"({found_format[:4]} vs {first_format[:4]}): cannot join without re-encoding"
            )
        chunks.append(Chunk(path, frames))
        if frames < chunk_frames:
            break
    return chunks


def _count_frames(path: Path, *, decode: bool) -> tuple[int, StreamFormat | None]:
    """Frames readable from a chunk, and its stream's format.

    A finished chunk was fsynced before its rename, so its packets are counted. A .part
    is decoded, up to the first frame that fails or comes out damaged.
    """
    frames = 0
    found_format: StreamFormat | None = None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            context = stream.codec_context
            found_format = StreamFormat(context.name, context.width, context.height,
                                        context.pix_fmt, bytes(context.extradata or b""))
            for packet in container.demux(stream):
                if not decode:
                    frames += packet.size > 0
                    continue
                for frame in packet.decode():
                    if frame.is_corrupt:
                        return frames, found_format
                    frames += 1
    except READ_ERRORS:
        pass  # the chunk holds the frames before the failure
    return frames, found_format


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
