"""The status bar's summary, as a streaming or recording app shows it: always current.

REC (or PAUSED) with the engine's elapsed time, frames recorded in this take, frames
dropped out of those captured, free space and time left on the disk being written, CPU,
and whether the engine is there at all. Every label is driven by an engine event or by
the link's liveness; none keeps a value the engine has not confirmed within a second or
two, and all of them say "—" once the engine is gone.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from engine.wire.events import Device, Stats
from recorder_gui import device_status as ds
from recorder_gui.engine_link import EngineLink

REC_COLOUR = "#d32f2f"
PAUSED_COLOUR = "#c79100"
LOST_COLOUR = "#d32f2f"


def format_elapsed(seconds: float) -> str:
    whole = int(max(0.0, seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def dropped_text(dropped: int, captured: int) -> str:
    """'dropped 3 / 9,000 (0.03 %)'."""
    share = 100 * dropped / captured if captured else 0.0
    return f"dropped {dropped:,} / {captured:,} ({share:.2f} %)"


class TakeStatus(QWidget):
    """REC and time, frames, dropped, disk, CPU and engine state, left to right."""

    def __init__(self, link: EngineLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rec = QLabel()
        self.frames = QLabel()
        self.dropped = QLabel()
        self.disk = QLabel()
        self.cpu = QLabel()
        self.engine = QLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(14)
        for label in (self.rec, self.frames, self.dropped, self.disk, self.cpu, self.engine):
            layout.addWidget(label)
        self.recording = self.paused = False
        self._elapsed_s = 0.0
        link.stats.connect(self.update_stats)
        link.device.connect(self.update_device)
        link.livenessChanged.connect(self.show_liveness)
        self.show_liveness(link.liveness)
        self.set_take(False, False)
        self.frames.setText("")
        self.dropped.setText("")
        self.disk.setText("disk —")
        self.cpu.setText("CPU —")

    def set_take(self, recording: bool, paused: bool, elapsed_s: float | None = None) -> None:
        """The take's state as the engine said it (start, pause, resume, stop, status)."""
        if recording and not self.recording:
            self.frames.setText("0 frames")
        self.frames.setVisible(recording)
        self.recording, self.paused = recording, paused
        if elapsed_s is not None:
            self._elapsed_s = elapsed_s
        if not recording:
            self._elapsed_s = 0.0
        self._show_rec()

    def _show_rec(self) -> None:
        if self.paused and self.recording:
            text, colour = f"❚❚ PAUSED {format_elapsed(self._elapsed_s)}", PAUSED_COLOUR
        elif self.recording:
            text, colour = f"● REC {format_elapsed(self._elapsed_s)}", REC_COLOUR
        else:
            text, colour = "not recording", ""
        self.rec.setText(text)
        self.rec.setStyleSheet(f"color: {colour}; font-weight: bold;" if colour else "")

    def update_stats(self, event: Stats) -> None:
        if event.elapsed_s is not None:
            self._elapsed_s = event.elapsed_s
        self._show_rec()
        if self.recording and event.recorded_frames is not None:
            self.frames.setText(f"{event.recorded_frames:,} frames")
        elif not self.recording:
            self.frames.setText("")
        dropped = sum(int(camera.get("dropped") or 0) for camera in event.cameras)
        captured = sum(int(camera.get("frames") or 0) for camera in event.cameras)
        self.dropped.setText(dropped_text(dropped, captured))

    def update_device(self, event: Device) -> None:
        storage = event.storage or {}
        if storage.get("free_bytes") is not None:
            text = f"disk {ds.format_bytes(storage['free_bytes'])} free"
            left = storage.get("seconds_to_full")
            if self.recording and left is not None:
                text += f", {ds.format_duration(left)} left"
            self.disk.setText(text)
            self.disk.setToolTip(f"the disk of {storage.get('path', '?')}")
        usage = (event.cpu or {}).get("usage_percent")
        self.cpu.setText("CPU —" if usage is None else f"CPU {usage:.0f} %")

    def show_liveness(self, liveness: str) -> None:
        if liveness == "connected":
            self.engine.setText("engine running")
            self.engine.setStyleSheet("")
            return
        self.engine.setText("engine NOT RESPONDING" if liveness == "not responding"
                            else "engine NOT RUNNING")
        self.engine.setStyleSheet(f"color: {LOST_COLOUR}; font-weight: bold;")
        if liveness == "lost":
            self.set_take(False, False)
            for label in (self.frames, self.dropped):
                label.setText("")
            self.disk.setText("disk —")
            self.cpu.setText("CPU —")
