"""What the rig asks of each camera and sensor, and the engine's limits on what it may ask:
plain data every layer may import, the GUI included, so no layer keeps its own copy."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_WIDTH = 640
DEFAULT_HEIGHT = 480
DEFAULT_FPS = 30.0

# The codecs a recording can be written with (engine.recording.encoder implements them).
CODECS = ("h264", "mjpeg", "ffv1")
# H.264 from a hardware encoder, by the name a rig or take asks for it -> FFmpeg's encoder:
# NVIDIA's NVENC, Intel's Quick Sync.
HARDWARE_H264 = {"nvenc": "h264_nvenc", "qsv": "h264_qsv"}
# What a rig or take may ask for: a codec, a hardware H.264 encoder, or auto (the first
# hardware encoder the machine has, else x264). engine.recording.encoder_choice turns the
# last two into h264 and an encoder before any file is made.
CODEC_CHOICES = (*CODECS, "auto", *HARDWARE_H264)
# URL schemes of network camera sources (scheme://...), opened through FFmpeg (PyAV's
# build): HTTP(S) (MJPEG, MPEG-TS, ...), RTSP(S), RTMP(S) pulled from a server, and MPEG-TS
# over UDP (unicast or multicast). No srt://: PyAV's FFmpeg is built without libsrt.
NETWORK_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "udp")
# Cameras named through their makers' SDKs (machine-vision cameras), and who may start
# their exposures (engine/sources/machine_vision.py): the engine per frame set, an input
# line, or the camera's own clock.
SDK_PREFIXES = ("pylon:", "genicam:")
TRIGGERS = ("software", "hardware", "free")
# Frame sizes the recording path takes: even (yuv420p) and within these bounds.
MIN_SIDE = 16
MAX_WIDTH = 7680
MAX_HEIGHT = 4320
MAX_FPS = 1000.0


@dataclass(frozen=True)
class CameraSpec:
    """A camera of the rig: a stable id (used for file names), its source and requests."""

    camera_id: str
    source: str = "synthetic"
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    fps: float = DEFAULT_FPS
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SensorSpec:
    """A non-video stream of the rig, e.g. ("imu", "imu:synthetic")."""

    name: str
    source: str
    settings: dict[str, Any] = field(default_factory=dict)


def with_trigger(cameras: list[CameraSpec], trigger: str) -> list[CameraSpec]:
    """The cameras with a group's trigger mode (a rig's, or record --trigger) given to
    every machine-vision camera that does not set its own."""
    return [replace(camera, settings={"trigger": trigger, **camera.settings})
            if camera.source.lower().startswith(SDK_PREFIXES) else camera
            for camera in cameras]
