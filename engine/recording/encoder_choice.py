"""Which encoder a take's videos get: x264, or a hardware H.264 encoder the machine has.

NVENC (h264_nvenc, NVIDIA) and Quick Sync (h264_qsv, Intel) take frames from system
memory, so a writer feeds them the buffer it feeds x264. PyAV's FFmpeg has both compiled
in whether or not the machine has the GPU and its driver, so an encoder counts as present
only if it opens with a take's options and encodes one small frame (without its device
or driver, opening it raises). Each is probed at most once per process, in the
controller, before a take's files are made: the manifest names the encoder from the start.
A writer whose hardware encoder still does not open (a consumer GPU's limit on
concurrent NVENC sessions, say) falls back to x264 itself and says why
(engine/workers/writer.py).

VAAPI (h264_vaapi) is not offered: PyAV 18 can upload system-memory frames to a hardware
encoder (add_stream(hwaccel=...)), but its wheels' FFmpeg is built without VAAPI, so
neither the encoder nor the device type exists to open.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av.logging
import numpy as np

from engine.recording.encoder import (
    DEFAULT_PRESET,
    ENCODER_THREADS,
    X264,
    VideoEncoder,
    own_encoder,
)
from engine.recording.errors import RecordingError
from engine.sources.ffmpeg_log import opening
from engine.specs import CODEC_CHOICES, HARDWARE_H264

AUTO = "auto"
# Above every hardware encoder's minimum frame size.
_PROBE_SIDE = 256


@dataclass(frozen=True)
class EncoderChoice:
    """How a take's videos are encoded: the files' codec, FFmpeg's encoder of it, x264's
    preset, a software encoder's threads, and why the hardware encoder asked for is not
    the one (None: it is, or none was asked for)."""

    codec: str
    encoder: str
    preset: str = DEFAULT_PRESET
    threads: int = ENCODER_THREADS
    fallback: str | None = None


def choose_encoder(codec: str, preset: str = DEFAULT_PRESET,
                   threads: int = ENCODER_THREADS) -> EncoderChoice:
    """codec as a rig or take asks for it (CODEC_CHOICES) as the writers will open it:
    auto is the first hardware encoder present, else x264; nvenc or qsv is x264 with the
    reason when the machine does not have it."""
    if codec not in CODEC_CHOICES:
        raise RecordingError(f"unknown codec {codec!r}: choose one of {', '.join(CODEC_CHOICES)}")
    if codec == AUTO:
        present = (encoder for encoder in HARDWARE_H264.values() if unavailable(encoder) is None)
        return EncoderChoice("h264", next(present, X264), preset, threads)
    hardware = HARDWARE_H264.get(codec)
    if hardware is None:
        return EncoderChoice(codec, own_encoder(codec), preset, threads)
    missing = unavailable(hardware)
    if missing is None:
        return EncoderChoice("h264", hardware, preset, threads)
    return EncoderChoice("h264", X264, preset, threads, f"{hardware} is not available: {missing}")


@functools.cache
def unavailable(encoder: str) -> str | None:
    """Why encoder cannot encode on this machine (FFmpeg's own error when it gave one),
    None when it can; probed once per process."""
    with opening() as lines:  # keeps FFmpeg's lines, e.g. "Cannot load libcuda.so.1"
        try:
            with tempfile.TemporaryDirectory(prefix="encoder-probe-") as folder:
                video = VideoEncoder(Path(folder) / "probe.mkv", "h264", _PROBE_SIDE,
                                     _PROBE_SIDE, 30.0, encoder=encoder)
                video.write(np.zeros((_PROBE_SIDE, _PROBE_SIDE, 3), np.uint8))
                video.close()
        except Exception as exc:  # whatever the encoder raises, it is not usable here
            said = [text.strip() for level, _, text in lines if level <= av.logging.ERROR]
            return "; ".join(said) or str(exc)
    return None
