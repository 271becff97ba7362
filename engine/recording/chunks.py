"""One camera's video as a series of MKV chunks that survive a crash.

Chunk k holds the recording's frames [k * chunk_frames, (k + 1) * chunk_frames):
the boundaries are frame numbers, so every camera rotates at the same frame with
no coordination. The chunk being written is `NNNNN.mkv.part`, muxed so that a
killed process leaves it readable up to its last 250 ms; it is fsynced every half
second (a power cut costs at most that), and on rotation it is closed,
fsynced and renamed to `NNNNN.mkv`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from engine.durable import fsync_path
from engine.recording.encoder import VideoEncoder

SYNC_INTERVAL_S = 0.5


def chunk_path(folder: Path, index: int, *, part: bool = False) -> Path:
    return folder / f"{index:05d}.mkv{'.part' if part else ''}"


class ChunkedVideoWriter:
    """Encodes frames into rotating chunks; `close` leaves only finished chunks behind."""

    def __init__(
        self, folder: Path, codec: str, width: int, height: int, fps: float, chunk_frames: int
    ) -> None:
        if chunk_frames < 1:
            raise ValueError("a chunk holds at least one frame")
        self.folder = folder
        self.frames_written = 0
        self._format = (codec, width, height, fps)
        self._chunk_frames = chunk_frames
        self._chunk = -1
        self._encoder: VideoEncoder | None = None
        self._next_sync = time.monotonic() + SYNC_INTERVAL_S
        folder.mkdir(parents=True, exist_ok=True)
        self._open_chunk(0)  # now, so a folder that cannot take files fails before recording

    def _open_chunk(self, index: int) -> None:
        codec, width, height, fps = self._format
        self._encoder = VideoEncoder(
            chunk_path(self.folder, index, part=True), codec, width, height, fps, crash_safe=True
        )
        self._chunk = index

    def _finish_chunk(self) -> None:
        """Close the open chunk: flush the encoder, fsync, drop `.part` (or the empty file)."""
        encoder, self._encoder = self._encoder, None
        if encoder is None:
            return
        part = chunk_path(self.folder, self._chunk, part=True)
        frames = encoder.close()
        if frames == 0:
            part.unlink(missing_ok=True)
            return
        fsync_path(part)
        part.rename(chunk_path(self.folder, self._chunk))
        fsync_path(self.folder)

    def write(self, image: np.ndarray) -> None:
        """Append the next frame of the recording, rotating at chunk boundaries."""
        chunk = self.frames_written // self._chunk_frames
        if chunk != self._chunk:
            self._finish_chunk()
            self._open_chunk(chunk)
        assert self._encoder is not None
        self._encoder.write(image)
        self.frames_written += 1

    def sync_due(self) -> bool:
        """True every SYNC_INTERVAL_S: time for `sync` (the writer syncs its timestamps too)."""
        return time.monotonic() >= self._next_sync

    def sync(self) -> None:
        """Push the open chunk to the disk, so a power cut loses at most the last half second."""
        self._next_sync = time.monotonic() + SYNC_INTERVAL_S
        if self._encoder is not None:
            fsync_path(chunk_path(self.folder, self._chunk, part=True))

    def close(self) -> int:
        """Finish the last chunk; returns the frames written. Safe to call twice."""
        self._finish_chunk()
        return self.frames_written
