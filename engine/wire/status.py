"""The one vocabulary of camera states, with how each reads and shows, for engine and GUI.

The supervisor decides a camera's state (engine/supervisor/health.py); the capture group
reports whether a camera is in the gate; status, events, the CLI and the GUI all name a
state by these values and colour it by `colour`.
"""

from __future__ import annotations

from enum import StrEnum


class CameraStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    RECONNECTING = "reconnecting"
    STALLED = "stalled"
    CRASHED = "crashed"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def colour(self) -> str:
        """The badge colour (#rrggbb) every view uses for this state."""
        return _COLOURS[self]

    @classmethod
    def colour_of(cls, name: str) -> str:
        """The colour of a state by name, any case; grey for one this version does not
        know (a newer engine's)."""
        try:
            return cls(name.lower()).colour
        except ValueError:
            return _COLOURS[cls.STOPPED]

    @property
    def meaning(self) -> str:
        """One line for a tooltip or a status table."""
        return _MEANINGS[self]

    @property
    def delivering(self) -> bool:
        """Whether the camera's frames reach the sync gate in this state."""
        return self in (CameraStatus.RUNNING, CameraStatus.PAUSED)


_COLOURS = {
    CameraStatus.STARTING: "#1565c0",
    CameraStatus.RUNNING: "#2e7d32",
    CameraStatus.PAUSED: "#f9a825",
    CameraStatus.RECONNECTING: "#ef6c00",
    CameraStatus.STALLED: "#ef6c00",
    CameraStatus.RESTARTING: "#6a1b9a",
    CameraStatus.CRASHED: "#c62828",
    CameraStatus.FAILED: "#c62828",
    CameraStatus.STOPPED: "#757575",
}

_MEANINGS = {
    CameraStatus.STARTING: "opening its source",
    CameraStatus.RUNNING: "delivering frames in lock-step with the group",
    CameraStatus.PAUSED: "held at the group's common frame (Freeze preview)",
    CameraStatus.RECONNECTING: "lost its stream and is reconnecting outside the gate",
    CameraStatus.STALLED: "delivered no frame for the stall timeout",
    CameraStatus.CRASHED: "its process failed; a restart is due",
    CameraStatus.RESTARTING: "a new process is being started",
    CameraStatus.FAILED: "could not open or read its source",
    CameraStatus.STOPPED: "stopped by the user",
}
