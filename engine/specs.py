"""What the rig asks of each camera and sensor: plain data every layer may import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_WIDTH = 640
DEFAULT_HEIGHT = 480
DEFAULT_FPS = 30.0


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
