"""What the rig asks of each camera and sensor, and the engine's limits on what it may ask:
plain data every layer may import, the GUI included, so no layer keeps its own copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_WIDTH = 640
DEFAULT_HEIGHT = 480
DEFAULT_FPS = 30.0

# The codecs a recording can be written with (engine.recording.encoder implements them).
CODECS = ("h264", "mjpeg", "ffv1")
# URL schemes of network camera sources (scheme://...), opened through FFmpeg (PyAV's
# build): HTTP(S) (MJPEG, MPEG-TS, ...), RTSP(S), RTMP(S) pulled from a server, and MPEG-TS
# over UDP (unicast or multicast). No srt://: PyAV's FFmpeg is built without libsrt.
NETWORK_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "udp")
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
