"""One camera's video file: BGR frames in, one MKV out, encoded with PyAV.

PyAV rather than OpenCV because the OpenCV wheel has no H.264 encoder. Every file
of a recording uses the same nominal frame rate and pts = frame index, so frame k
of every camera's file belongs to the same frame set; the true capture times live
in the timestamps files.

H.264 takes its frames as YUV 4:2:0, converted by OpenCV into one preallocated buffer:
5x faster than FFmpeg's converter on the same frame (0.34 against 1.77 ms at 720p), within
+-1 of it. That conversion is BT.601 with limited ("TV") range, which the file's colour
metadata says, so players turn it back into the same colours. x264 copies each frame in
as it takes it, so the buffer is free again when encode() returns. A hardware H.264
encoder (NVENC, Quick Sync: encoder_choice.py decides) is fed the same buffer from system
memory and copies it onto its device as it takes it.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Final, Literal

import av
import cv2
import numpy as np

from engine.durable import fsync_path
from engine.recording.errors import RecordingError
from engine.sources import framecode
from engine.specs import CODECS

# One encoder runs per camera on a small machine: two threads each keeps a single
# camera fast without letting N cameras oversubscribe the cores N-fold (the default of
# a rig's [recording] encoder_threads).
ENCODER_THREADS = 2
# x264's presets, fastest first: a slower one makes a smaller file of the same quality
# for more CPU per frame. ultrafast, the default, keeps several 720p streams real-time on
# 2 cores.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow")
DEFAULT_PRESET = "ultrafast"
X264: Final = "libx264"

# codec -> (its FFmpeg encoders, its own first; the file's pixel format). ffv1 stores BGR
# as bgr0, which is bit-exact; yuv420p would round the colours and halve the chroma
# resolution. The encoder names are literals so PyAV's stubs know add_stream() returns a
# video stream.
_ENCODERS: dict[str, tuple[tuple[Literal["libx264", "h264_nvenc", "h264_qsv", "mjpeg",
                                         "ffv1"], ...], str]] = {
    "h264": ((X264, "h264_nvenc", "h264_qsv"), "yuv420p"),
    "mjpeg": (("mjpeg",), "yuvj420p"),
    "ffv1": (("ffv1",), "bgr0"),
}
# h264_qsv takes only nv12: the same 4:2:0 with its chroma interleaved, which FFmpeg
# repacks each yuv420p frame into.
_FED_PIX_FMTS = {"h264_qsv": "nv12"}
# A mono camera's pictures (one channel) are stored as gray where the encoder can (x264's
# 4:0:0 High profile, FFV1): a third of the pixels to encode, no colour that was never
# there. MJPEG and the hardware encoders have no gray mode: their chroma planes are flat.
_GRAY_ENCODERS = (X264, "ffv1")
# What OpenCV's BGR -> I420 conversion produces (FFmpeg's codes for BT.601, TV range).
_BT601, _TV_RANGE = 6, 1  # AVCOL_SPC/PRI/TRC_SMPTE170M, AVCOL_RANGE_MPEG


def own_encoder(codec: str) -> str:
    """FFmpeg's software encoder of codec: the one its files get unless told another."""
    return _ENCODERS[codec][0][0]


def recorded_pix_fmt(codec: str, channels: int, encoder: str | None = None) -> str:
    """The pixel format a camera's file is written in (the manifest's `pix_fmt`) by
    encoder (default: the codec's own)."""
    encoders, pix_fmt = _ENCODERS[codec]
    if channels == 1 and (encoder or encoders[0]) in _GRAY_ENCODERS:
        return "gray"
    return pix_fmt


# For files that must stay readable if the process dies mid-write (a take's files):
# one cluster per frame, handed to the OS as soon as it closes, so a crash loses at
# most the frame being written, and a file can be cut after any frame by truncating
# it at a cluster (recording/mkv_seal.py). A cluster costs ~15 bytes of header.
CRASH_SAFE_MUXING = {"flush_packets": "1", "cluster_size_limit": "0"}


def default_options(
    codec: str, fps: float, *, encoder: str | None = None, preset: str = DEFAULT_PRESET,
    threads: int = ENCODER_THREADS,
) -> dict[str, str]:
    """Encoder options used unless the caller overrides them (values measured on 2 cores;
    the hardware encoders' from FFmpeg's documentation: this machine has neither)."""
    keyframes = str(max(1, round(fps)))
    # Hardware: no B-frames and no frame held back (NVENC's delay, Quick Sync's
    # async_depth), so as with x264's zerolatency below each frame leaves the encoder at
    # once; constant quality near x264's crf 20 (FFmpeg's default is a fixed bitrate).
    if encoder == "h264_nvenc":
        return {"tune": "ll", "zerolatency": "1", "delay": "0", "bf": "0", "rc": "vbr",
                "cq": "20", "g": keyframes}
    if encoder == "h264_qsv":
        return {"async_depth": "1", "bf": "0", "global_quality": "20", "g": keyframes}
    # Frame threading encoded a single stream 1.2-1.8x faster than slice threading
    # for libx264 and mjpeg; the cost is a few frames of latency, irrelevant here.
    options = {"threads": str(threads), "thread_type": "frame"}
    if codec == "h264":
        # crf 20 is visually clean; a keyframe every ~1 s keeps files seekable and bounds
        # the tail a crash check decodes.
        # zerolatency: each frame leaves the encoder at once, so a crash loses none held
        # inside it (and the writer's cursor never waits on encoder look-ahead).
        options |= {"preset": preset, "tune": "zerolatency", "crf": "20", "g": keyframes}
    elif codec == "mjpeg":
        # A fixed quantiser of 3 (like ffmpeg -q:v 3). -q:v works through each frame's
        # quality field, which PyAV cannot set, so pin the rate control's range instead.
        options |= {"qmin": "3", "qmax": "3"}
    elif codec == "ffv1":
        # Version 3 with 4 slices: ffv1 threads only over slices, and each slice
        # carries a CRC so damage is detected on decode.
        options |= {"level": "3", "slices": "4", "slicecrc": "1", "thread_type": "slice"}
    return options


def frame_rate(fps: float) -> Fraction:
    """fps as a rational for the time base, e.g. 29.97 -> 2997/100, 30000/1001 stays."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


class VideoEncoder:
    """Encode BGR (or, with channels=1, gray) uint8 frames into an MKV file; a frame's pts
    is its index in the file. encoder: FFmpeg's encoder of the codec (default: its own);
    preset and threads: see default_options."""

    def __init__(
        self,
        path: Path,
        codec: str,
        width: int,
        height: int,
        fps: float,
        options: dict[str, str] | None = None,
        *,
        crash_safe: bool = False,
        channels: int = 3,
        encoder: str | None = None,
        preset: str = DEFAULT_PRESET,
        threads: int = ENCODER_THREADS,
    ) -> None:
        self.path = Path(path)
        if codec not in _ENCODERS:
            raise RecordingError(
                f"cannot create video file {self.path}: unknown codec {codec!r} "
                f"(valid: {', '.join(CODECS)})"
            )
        self.codec = codec
        self.frames_written = 0
        self._shape = (height, width, channels)
        self._input = (height, width) if channels == 1 else self._shape
        self._input_format = "gray" if channels == 1 else "bgr24"
        encoders = _ENCODERS[codec][0]
        wanted = encoder or encoders[0]
        encoder_name = next((name for name in encoders if name == wanted), None)
        if encoder_name is None:
            raise RecordingError(
                f"cannot create video file {self.path}: {codec} has no encoder {wanted!r} "
                f"(valid: {', '.join(encoders)})"
            )
        self.encoder_name: str = encoder_name
        pix_fmt = recorded_pix_fmt(codec, channels, encoder_name)
        # Converted here, not by FFmpeg (see the module doc): one buffer, written per frame,
        # and one frame wrapping it, handed to the encoder again and again (it copies the
        # pixels in as it takes them).
        self._yuv = (np.empty((height * 3 // 2, width), np.uint8)
                     if pix_fmt == "yuv420p" and channels == 3 else None)
        self._yuv_frame = (None if self._yuv is None
                           else av.VideoFrame.from_numpy_buffer(self._yuv, format="yuv420p"))
        rate = frame_rate(fps)
        self._container = av.open(
            str(self.path), mode="w", format="matroska",
            container_options=CRASH_SAFE_MUXING if crash_safe else None,
        )
        self._closed = False
        try:
            self._stream = self._container.add_stream(
                encoder_name, rate=rate, options=default_options(
                    codec, fps, encoder=encoder_name, preset=preset, threads=threads
                ) | (options or {})
            )
            self._stream.width = width
            self._stream.height = height
            self._stream.pix_fmt = _FED_PIX_FMTS.get(encoder_name, pix_fmt)
            context = self._stream.codec_context
            context.time_base = 1 / rate
            if self._yuv is not None:
                context.colorspace = context.color_primaries = context.color_trc = _BT601
                context.color_range = _TV_RANGE
            # Opens the encoder and the file now, so a bad folder fails here, not mid-recording.
            self._container.start_encoding()
        except (av.FFmpegError, OSError, ValueError) as exc:  # e.g. no device for the encoder
            self._abandon()
            raise self._error("cannot create", exc) from exc
        unused = self._stream.codec_context.options  # what the encoder did not consume
        if unused:
            self._abandon()
            if self.path.is_file():  # only the header is in it; never unlink a device
                self.path.unlink()
            raise RecordingError(
                f"cannot create video file {self.path}: {encoder_name} has no option(s) "
                + ", ".join(sorted(unused))
            )

    def write(self, image: np.ndarray) -> None:
        """Encode one BGR frame.

        image may be a view into shared memory: PyAV wraps it without copying and the
        colour conversion reads it during this call; nothing refers to it afterwards.
        """
        if image.shape != self._shape or image.dtype != np.uint8:
            # A wrong size would otherwise be silently rescaled by the converter.
            raise ValueError(
                f"{self.path.name}: expected uint8 {self._shape}, got {image.dtype} {image.shape}"
            )
        if self._yuv_frame is not None:
            cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420, dst=self._yuv)
            frame = self._yuv_frame
        else:
            frame = av.VideoFrame.from_numpy_buffer(image.reshape(self._input),
                                                    format=self._input_format)
        frame.pts = self.frames_written
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except OSError as exc:
            raise self._error(f"cannot write frame {self.frames_written} to", exc) from exc
        self.frames_written += 1

    def sync(self) -> None:
        """Push what was written to the disk, so a power cut loses at most the time since."""
        fsync_path(self.path)

    def close(self) -> int:
        """Flush the encoder and close the file (idempotent); return frames written."""
        if self._closed:
            return self.frames_written
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except OSError as exc:
            self._abandon()
            raise self._error("cannot finish", exc) from exc
        self._closed = True
        return self.frames_written

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _abandon(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):  # already failing; the caller reports the first error
            self._container.close()

    def _error(self, action: str, exc: Exception) -> RecordingError:
        reason = getattr(exc, "strerror", None) or str(exc)
        detail = getattr(exc, "filename", None)  # PyAV puts the failing call here
        if detail and detail != str(self.path):
            reason = f"{reason} ({detail})"
        return RecordingError(f"{action} video file {self.path}: {reason}")


def synthetic_frame(out: np.ndarray, index: int) -> None:
    """Fill out with a moving gradient and bar plus a frame stamp, like a synthetic camera."""
    height, width = out.shape[:2]
    x = np.arange(width, dtype=np.uint16)
    y = np.arange(height, dtype=np.uint16)[:, None]
    out[..., 0] = (x + 3 * index) & 0xFF
    out[..., 1] = (y + 2 * index) & 0xFF
    out[..., 2] = ((x + y) // 2 + index) & 0xFF
    left = (8 * index) % max(1, width - width // 8)
    out[height // 3 : height // 2, left : left + width // 8] = 255
    framecode.burn(out, index, 0)


def encode_throughput(
    codec: str, width: int, height: int, frames: int = 60, options: dict[str, str] | None = None
) -> float:
    """Frames per second encoding a synthetic moving pattern, flush included (for the benchmark).

    Only write() and close() are timed, not drawing the pattern.
    """
    image = np.empty((height, width, 3), np.uint8)
    elapsed = 0.0
    with tempfile.TemporaryDirectory() as folder:
        encoder = VideoEncoder(Path(folder) / "bench.mkv", codec, width, height, 30.0, options)
        for index in range(frames):
            synthetic_frame(image, index)
            start = time.perf_counter()
            encoder.write(image)
            elapsed += time.perf_counter() - start
        start = time.perf_counter()
        encoder.close()
        elapsed += time.perf_counter() - start
    return frames / elapsed
