"""One camera's video file written by stream copy: the camera's own packets, untouched.

The file is muxed like an encoded take's (one Matroska cluster per frame, handed to the
OS as it closes: recording/encoder.py's CRASH_SAFE_MUXING), with pts = index in the file
on the rig's frame rate, so frame k of every file of a take is frame set k.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import av
import numpy as np

from engine.durable import fsync_path
from engine.recording.encoder import CRASH_SAFE_MUXING, frame_rate
from engine.recording.errors import RecordingError
from engine.sources.stream_template import open_template


class PacketFile:
    """Mux a camera's compressed packets into an MKV; the first must be a keyframe."""

    def __init__(self, path: Path, template: bytes, fps: float) -> None:
        self.path = Path(path)
        self.frames_written = 0
        self._time_base = 1 / frame_rate(fps)
        source, stream = open_template(template)
        self.codec = stream.codec_context.name
        try:
            self._container = av.open(str(self.path), mode="w", format="matroska",
                                      container_options=CRASH_SAFE_MUXING)
        except (OSError, ValueError) as exc:
            source.close()
            raise RecordingError(f"cannot create video file {self.path}: {exc}") from exc
        self._closed = False
        try:
            self._stream = self._container.add_stream_from_template(stream)
            self._stream.time_base = self._time_base
            # The take's rate, as every file of it says, not the camera's own (its SPS).
            self._stream.codec_context.framerate = frame_rate(fps)
            self._container.start_encoding()
        except (OSError, ValueError) as exc:
            self._abandon()
            raise RecordingError(f"cannot create video file {self.path}: {exc}") from exc
        finally:
            source.close()

    def write(self, data: np.ndarray, keyframe: bool) -> None:
        """Mux one packet (its bytes, e.g. a ring slot's) as the file's next frame."""
        packet = av.Packet(data)  # type: ignore[arg-type]  # any buffer; PyAV copies it
        packet.pts = packet.dts = self.frames_written
        packet.time_base = self._time_base
        packet.is_keyframe = keyframe
        packet.stream = self._stream
        try:
            self._container.mux(packet)
        except OSError as exc:
            raise RecordingError(
                f"cannot write frame {self.frames_written} to video file {self.path}: "
                f"{exc.strerror or exc}") from exc
        self.frames_written += 1

    def sync(self) -> None:
        fsync_path(self.path)

    def close(self) -> int:
        """Close the file (idempotent); return the frames written."""
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except OSError as exc:
                raise RecordingError(f"cannot finish video file {self.path}: {exc}") from exc
        return self.frames_written

    def _abandon(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._container.close()
