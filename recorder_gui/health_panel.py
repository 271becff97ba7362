"""The health panel: frame-rate history per camera, system health, and the engine's event log.

Stats arrive about once a second, so each one appends a point and hands the curve its
bounded history (setData on an existing curve); nothing here runs per frame.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QFontDatabase, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from recorder_gui.engine_link import EngineLink

HISTORY_POINTS = 600  # ten minutes at one stats event a second
LOG_LINES = 1000
GB = 1_000_000_000

WARNING = QColor("#e67e00")
ALARM = QColor("#d32f2f")
DISK_WARNING_BELOW = 5 * GB
DISK_ALARM_BELOW = 1 * GB

NOT_REPORTED = "not reported by this engine yet"
DEVICE_ROWS = {"cpu": "CPU", "memory": "Memory", "disk": "Disk", "network": "Network",
               "battery": "Battery"}
UNLOGGED_EVENTS = ("stats", "assembly_progress")  # too frequent for a log
ERROR_EVENTS = ("camera_failed", "error", "recording_error", "sensor_error")
# The events EngineLink also relays as errorRaised, right after `event` (see _on_error).
RELAYED_ERROR_EVENTS = ("error", "recording_error", "sensor_error")
DETAIL_KEYS = ("camera", "sensor", "folder", "status", "message")


@dataclass
class FpsHistory:
    """The last HISTORY_POINTS fps samples of one camera, and the curve that shows them."""

    curve: pg.PlotDataItem
    times: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_POINTS))
    fps: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_POINTS))

    def add(self, when: float, fps: float) -> None:
        self.times.append(when)
        self.fps.append(fps)
        self.curve.setData(np.fromiter(self.times, float, len(self.times)),
                           np.fromiter(self.fps, float, len(self.fps)))


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def event_line(event: dict[str, Any]) -> str:
    """One log line: local time, event kind, and what it concerns."""
    when = time.strftime("%H:%M:%S", time.localtime(event.get("time") or time.time()))
    details = [str(event[key]) for key in DETAIL_KEYS if event.get(key) not in (None, "")]
    if isinstance(event.get("cameras"), list):
        details.append(", ".join(map(str, event["cameras"])))
    if event.get("errors"):
        details.append("; ".join(map(str, event["errors"])))
    return "  ".join([when, str(event.get("event", "?")), *details])


class HealthPanel(QWidget):
    """How the cameras keep up, how the machine is doing, and what the engine said."""

    def __init__(self, link: EngineLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self._histories: dict[str, FpsHistory] = {}
        self._relayed_error: str | None = None
        self._fps_top = 0.0

        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setLabel("left", "fps")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.addLegend(offset=(-10, 10))  # top right
        self.plot.setMinimumHeight(160)
        self.dropped_label = QLabel("Dropped frames: —")

        self.device_values = {key: QLabel() for key in DEVICE_ROWS}
        for label in self.device_values.values():
            _show(label, "—", NOT_REPORTED)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

        self._lay_out()
        link.stats.connect(self.update_stats)
        link.event.connect(self._on_event)
        link.errorRaised.connect(self._on_error)

    def _lay_out(self) -> None:
        rates = QGroupBox("Frame rate (last 10 minutes)")
        rates_layout = QVBoxLayout(rates)
        rates_layout.addWidget(self.plot)
        rates_layout.addWidget(self.dropped_label)

        system = QGroupBox("System")
        form = QFormLayout(system)
        for key, title in DEVICE_ROWS.items():
            form.addRow(title, self.device_values[key])

        events = QGroupBox("Event log")
        QVBoxLayout(events).addWidget(self.log)

        layout = QVBoxLayout(self)
        layout.addWidget(rates, stretch=2)
        layout.addWidget(system)
        layout.addWidget(events, stretch=3)

    # --- stats -------------------------------------------------------------------------

    def update_stats(self, stats: dict[str, Any]) -> None:
        """Add one stats event to the fps history and the dropped-frames total."""
        when = float(stats.get("time") or time.time())
        cameras = stats.get("cameras") or []
        for camera in cameras:
            history = self._histories.get(camera["id"]) or self._add_curve(camera["id"])
            history.add(when, float(camera.get("fps") or 0.0))
        for gone in set(self._histories) - {camera["id"] for camera in cameras}:
            self.plot.removeItem(self._histories.pop(gone).curve)  # camera left the rig
        self._scale_fps(cameras)
        dropped = {camera["id"]: int(camera.get("dropped") or 0) for camera in cameras}
        per_camera = ", ".join(f"{camera} {count}" for camera, count in dropped.items())
        self.dropped_label.setText(f"Dropped frames: {sum(dropped.values())} ({per_camera})")
        if stats.get("device"):
            self.update_device(stats["device"])

    def _scale_fps(self, cameras: list[dict[str, Any]]) -> None:
        """Keep zero and the targets in view, so jitter of a few hundredths of a frame per
        second does not look like a collapse."""
        rates = (float(c.get(key) or 0.0) for c in cameras for key in ("fps", "target_fps"))
        top = 1.1 * max(rates, default=0.0)
        if top > self._fps_top:
            self._fps_top = top
            self.plot.setYRange(0, top, padding=0)

    def _add_curve(self, camera_id: str) -> FpsHistory:
        pen = pg.mkPen(pg.intColor(len(self._histories), hues=8), width=2)
        history = FpsHistory(self.plot.plot(name=camera_id, pen=pen))
        self._histories[camera_id] = history
        return history

    # --- device health ---------------------------------------------------------------------

    def update_device(self, status: dict[str, Any]) -> None:
        """Show a device-status snapshot; parts it lacks stay "—"."""
        values = self.device_values
        cpu, memory = status.get("cpu"), status.get("memory")
        storage, network = status.get("storage"), status.get("network")
        if cpu:
            _show(values["cpu"], f"{cpu['usage_percent']:.0f} %")
        if memory:
            _show(values["memory"], f"{memory['used_percent']:.0f} % used")
        if storage:
            self._show_storage(storage)
        if network:
            _show(values["network"], str(network["status"]))
        if "battery" in status:
            battery = status["battery"]
            if battery is None:
                _show(values["battery"], "no battery")
            else:
                charging = ", charging" if battery.get("is_charging") else ""
                _show(values["battery"], f"{battery['percent']:.0f} %{charging}")

    def _show_storage(self, storage: dict[str, Any]) -> None:
        free = int(storage["free_bytes"])
        text = f"{free / GB:.1f} GB free"
        if storage.get("seconds_to_full") is not None:
            text += f", full in {format_duration(storage['seconds_to_full'])}"
        colour = None
        if free < DISK_WARNING_BELOW:
            colour = ALARM if free < DISK_ALARM_BELOW else WARNING
        _show(self.device_values["disk"], text, colour=colour)

    # --- event log ---------------------------------------------------------------------------

    def log_lines(self) -> list[str]:
        """The log as plain text lines, oldest first."""
        return self.log.toPlainText().splitlines()

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind in UNLOGGED_EVENTS:
            return
        relayed = kind in RELAYED_ERROR_EVENTS
        self._relayed_error = event.get("message", str(event)) if relayed else None
        self._append(event_line(event), error=kind in ERROR_EVENTS)

    def _on_error(self, message: str) -> None:
        """Log refused commands. EngineLink emits errorRaised for some engine events too,
        just after `event`; those are logged already, with their kind and camera."""
        if message == self._relayed_error:
            self._relayed_error = None
            return
        self._append(event_line({"event": "error", "message": message}), error=True)

    def _append(self, line: str, *, error: bool) -> None:
        scrollbar = self.log.verticalScrollBar()
        following = scrollbar.value() == scrollbar.maximum()
        cursor = QTextCursor(self.log.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not self.log.document().isEmpty():
            cursor.insertBlock()
        text_format = QTextCharFormat()
        if error:
            text_format.setForeground(ALARM)
        cursor.insertText(line, text_format)
        if following:
            scrollbar.setValue(scrollbar.maximum())


def _show(label: QLabel, text: str, tooltip: str = "", colour: QColor | None = None) -> None:
    label.setText(text)
    label.setToolTip(tooltip)
    palette = QPalette()  # an empty palette: the label inherits its normal colours again
    if colour is not None:
        palette.setColor(QPalette.ColorRole.WindowText, colour)
    label.setPalette(palette)
