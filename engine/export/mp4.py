"""One camera's video as an MP4 file, the container FreeMoCap, SkellyCam and anipose read.

H.264 and H.265 (a network camera recorded by stream copy) are remuxed: the recorded
packets go into the MP4 untouched, so the picture is exactly the recording's and the
copy costs no CPU (a mono camera's H.264 stays 4:0:0, which FFmpeg-based readers such
as OpenCV decode). MJPEG and FFV1 are re-encoded with x264 (crf 17, visually lossless;
yuv420p, BT.601 limited range like the recorder's own H.264; a gray FFV1 gets flat
chroma): MP4 players and the tools' OpenCV readers expect H.264, and FFV1 has no
standard place in MP4. Either way frame k is stamped k / fps, the take's nominal rate,
as in the recording: the true capture times go beside the videos in each format's
timestamps files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from engine.export.errors import ExportError
from engine.recording.encoder import X264, frame_rate
from engine.recording.progress import Progress

# Codecs MP4 holds as recorded (PyAV's decoder names).
REMUXED_CODECS = ("h264", "hevc")
REENCODE_OPTIONS = {"crf": "17", "preset": "veryfast"}
_BT601, _TV_RANGE = 6, 1  # as engine/recording/encoder.py writes H.264
_PROGRESS_EVERY = 30  # frames


@dataclass(frozen=True)
class Mp4Video:
    """What write_mp4 wrote: how (remux or re-encode), the recorded codec, the size."""

    how: str
    recorded_codec: str  # PyAV's decoder name: h264, hevc, mjpeg, ffv1
    width: int
    height: int


def write_mp4(source: Path, target: Path, frames: int, fps: float,
              progress: Progress | None = None) -> Mp4Video:
    """Write the `frames` frames of `source` (a recorded camera file) to `target` as MP4
    at `fps`. ExportError unless every frame made it."""
    rate = frame_rate(fps)
    with av.open(str(source)) as recorded, av.open(str(target), "w", format="mp4") as mp4:
        context = recorded.streams.video[0].codec_context
        video = Mp4Video("remux" if context.name in REMUXED_CODECS else "re-encode",
                         context.name, context.width, context.height)
        write = _remux if video.how == "remux" else _reencode
        written = write(recorded, mp4, rate, progress, frames)
    if written != frames:
        raise ExportError(f"{source} holds {written} frames, its take {frames}")
    return video


def _remux(recorded: av.container.InputContainer, mp4: av.container.OutputContainer,
           rate: Fraction, progress: Progress | None, frames: int) -> int:
    output = mp4.add_stream_from_template(recorded.streams.video[0])
    output.time_base = 1 / rate
    written = 0
    for packet in _packets(recorded):
        packet.stream = output
        packet.pts = packet.dts = written  # no B-frames: the recorder never writes them
        packet.duration = 1
        packet.time_base = 1 / rate
        mp4.mux(packet)
        written += 1
        _report(progress, written, frames)
    return written


def _reencode(recorded: av.container.InputContainer, mp4: av.container.OutputContainer,
              rate: Fraction, progress: Progress | None, frames: int) -> int:
    source = recorded.streams.video[0]
    output = mp4.add_stream(X264, rate=rate, options=dict(REENCODE_OPTIONS))
    output.width, output.height = source.codec_context.width, source.codec_context.height
    output.pix_fmt = "yuv420p"
    context = output.codec_context
    context.time_base = 1 / rate
    context.colorspace = context.color_primaries = context.color_trc = _BT601
    context.color_range = _TV_RANGE
    written = 0
    for frame in recorded.decode(source):
        picture = frame.reformat(format="yuv420p")
        picture.pts = written
        picture.time_base = 1 / rate
        for packet in output.encode(picture):
            mp4.mux(packet)
        written += 1
        _report(progress, written, frames)
    for packet in output.encode(None):
        mp4.mux(packet)
    return written


def _packets(container: av.container.InputContainer) -> Iterator[av.Packet]:
    """The video packets in file order, without the demuxer's empty end-of-file ones."""
    for packet in container.demux(container.streams.video[0]):
        if packet.size:
            yield packet


def _report(progress: Progress | None, written: int, frames: int) -> None:
    if progress is not None and (written % _PROGRESS_EVERY == 0 or written == frames):
        progress(written / frames)
