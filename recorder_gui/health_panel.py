"""The health panel: can the machine keep recording? Device values with their history,
how each camera keeps up, and the engine's event log.

Stats and device events arrive about once a second; each appends a point to bounded
histories and hands existing curves their data (setData). Nothing here runs per frame.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontDatabase, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.wire.events import EVENTS, Device, Event, Stats
from engine.wire.status import CameraStatus
from recorder_gui import device_status as ds
from recorder_gui.engine_link import EngineLink
from recorder_gui.history_plot import HistoryPlot, TimeSeries
from recorder_gui.recording_panel import ALARM, dropped_colour, fps_colour

LOG_LINES = 1000
DEVICE_ROWS = {"device": "Device", "cpu": "CPU", "memory": "Memory", "disk": "Disk",
               "network": "Network", "battery": "Battery"}
DEVICE_PLOTS: dict[str, dict[str, Any]] = {
    "cpu": {"title": "CPU %", "percent": True},
    "memory": {"title": "Memory %", "percent": True},
    "disk": {"title": "Writing", "unit": "MB/s", "floor": 1.0},  # to disk; longer is clipped
    "battery": {"title": "Battery %", "percent": True}}
FPS_MARGIN = 1.1  # the fps plot's top: at least this much above the highest target
# Told apart at a glance, and none is the warning orange or the alarm red.
CAMERA_COLOURS = ("#4fc3f7", "#fff176", "#ba68c8", "#81c784", "#f48fb1", "#90a4ae",
                  "#4db6ac", "#9575cd")
SPLITTER_SIZES = [360, 380, 380, 380]  # device, frame rate, history, event log
# too frequent for a log
UNLOGGED_EVENTS = ("stats", "device", "assembly_progress", "export_progress")
ERROR_EVENTS = ("camera_failed", "error", "recording_error", "sensor_error")
# The events EngineLink also relays as errorRaised, right after `event` (see _on_error).
RELAYED_ERROR_EVENTS = ("error", "recording_error", "sensor_error")
DETAIL_KEYS = ("camera", "sensor", "folder", "status", "message")


@dataclass
class CameraRow:
    """One camera's line beside the frame-rate plot; the swatch is its curve's colour."""

    swatch: QLabel
    name: QLabel
    fps: QLabel
    dropped: QLabel

    def labels(self) -> tuple[QLabel, ...]:
        return self.swatch, self.name, self.fps, self.dropped


def event_line(event: dict[str, Any]) -> str:
    """One log line: local time, event kind, and what it concerns."""
    when = time.strftime("%H:%M:%S", time.localtime(event.get("time") or time.time()))
    details = [str(event[key]) for key in DETAIL_KEYS if event.get(key) not in (None, "")
               and key != "folder"]
    if event.get("folder"):  # the take's name: its full path is in the Recording panel
        details.insert(0, Path(str(event["folder"])).name)
    if isinstance(event.get("cameras"), list):
        details.append(", ".join(map(str, event["cameras"])))
    if event.get("errors"):
        details.append("; ".join(map(str, event["errors"])))
    return "  ".join([when, str(event.get("event", "?")), *details])


class HealthPanel(QWidget):
    """How the machine is doing, how the cameras keep up, and what the engine said."""

    def __init__(self, link: EngineLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self._relayed_error: str | None = None

        self.device_values = {key: _plain_label() for key in DEVICE_ROWS}
        for label in self.device_values.values():
            _show(label, "—", ds.NOT_REPORTED)
        self.alerts_label = QLabel()
        self.alerts_label.setTextFormat(Qt.TextFormat.RichText)  # its texts are escaped
        self.alerts_label.setWordWrap(True)
        self.alerts_label.hide()

        self.history_plots = {key: HistoryPlot(**options) for key, options in DEVICE_PLOTS.items()}
        self.device_history = {key: plot.add_series() for key, plot in self.history_plots.items()}
        self.no_battery = pg.TextItem("no battery", color="#9e9e9e", anchor=(0.5, 0.5))
        self.no_battery.setPos(-300, 50)
        self.no_battery.hide()
        self.history_plots["battery"].addItem(self.no_battery)

        # The unit is the title: the plot is narrow, and the values stack up beside it.
        self.plot = HistoryPlot("fps", floor=FPS_MARGIN * 30.0)
        self.fps_history: dict[str, TimeSeries] = {}
        self.camera_rows: dict[str, CameraRow] = {}
        self._camera_grid = QGridLayout()

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

        self._lay_out()
        link.stats.connect(self.update_stats)
        link.device.connect(self.update_device)
        link.anyEvent.connect(self._on_event)
        link.errorRaised.connect(self._on_error)
        link.disconnected.connect(self._on_engine_gone)

    def _lay_out(self) -> None:
        """Side by side: the panel sits in a wide, low dock under the tiles."""
        device = QGroupBox("Device")
        device_layout = QVBoxLayout(device)
        device_layout.addWidget(self.alerts_label)
        form = QFormLayout()
        form.setVerticalSpacing(2)  # the dock is low
        for key, title in DEVICE_ROWS.items():
            form.addRow(title, self.device_values[key])
        device_layout.addLayout(form)
        device_layout.addStretch()

        cameras = QGroupBox("Frame rate")
        cameras_layout = QHBoxLayout(cameras)
        cameras_layout.addWidget(self.plot, stretch=1)
        for column, title in enumerate(("", "", "fps", "dropped")):
            header = QLabel(title)
            header.setEnabled(False)  # greyed: a column heading, not a value
            self._camera_grid.addWidget(header, 0, column)
        self._camera_grid.setRowStretch(100, 1)  # rows stay at the top
        cameras_layout.addLayout(self._camera_grid)

        history = QGroupBox("Last 10 minutes")
        grid = QGridLayout(history)
        for index, plot in enumerate(self.history_plots.values()):
            grid.addWidget(plot, index // 2, index % 2)

        events = QGroupBox("Event log")
        QVBoxLayout(events).addWidget(self.log)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        for group in (device, cameras, history, events):
            splitter.addWidget(group)
        splitter.setSizes(SPLITTER_SIZES)  # scaled to the panel's width when shown
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    # --- cameras ---------------------------------------------------------------------------

    def update_stats(self, stats: Stats) -> None:
        """Add one stats event to the fps history and show each camera's figures."""
        now = stats.time
        cameras = stats.cameras
        ids = [camera["id"] for camera in cameras]
        if ids != list(self.camera_rows):
            self._set_cameras(ids)
        # Zero and the targets stay in view, so jitter of a few hundredths of a frame per
        # second does not look like a collapse (the plot ignores spikes above them).
        targets = (float(camera.get("target_fps") or 0.0) for camera in cameras)
        self.plot.set_floor(FPS_MARGIN * max(targets, default=0.0) or 1.0)
        for camera in cameras:
            self.fps_history[camera["id"]].add(now, float(camera.get("fps") or 0.0))
            self._show_camera(self.camera_rows[camera["id"]], camera)

    def _set_cameras(self, ids: list[str]) -> None:
        """The rig changed: one curve and one row per camera, histories of the rest kept."""
        for gone in set(self.fps_history) - set(ids):
            self.plot.remove_series(self.fps_history.pop(gone))
        for camera_id in ids:
            if camera_id not in self.fps_history:
                colour = CAMERA_COLOURS[len(self.fps_history) % len(CAMERA_COLOURS)]
                self.fps_history[camera_id] = self.plot.add_series(camera_id, colour)
        for row in self.camera_rows.values():
            for label in row.labels():
                label.deleteLater()
        self.camera_rows = {
            camera_id: CameraRow(QLabel(), _plain_label(camera_id), QLabel(), QLabel())
            for camera_id in ids}
        for number, (camera_id, row) in enumerate(self.camera_rows.items(), start=1):
            _show(row.swatch, "■", colour=self.fps_history[camera_id].curve.opts["pen"].color())
            for column, label in enumerate(row.labels()):
                if column > 1:
                    label.setAlignment(Qt.AlignmentFlag.AlignRight)
                self._camera_grid.addWidget(label, number, column)

    @staticmethod
    def _show_camera(row: CameraRow, camera: dict[str, Any]) -> None:
        fps, target = float(camera.get("fps") or 0.0), camera.get("target_fps")
        frames, dropped = int(camera.get("frames") or 0), int(camera.get("dropped") or 0)
        status = str(camera.get("status", ""))
        row.name.setToolTip(f"{status}: {camera['error']}" if camera.get("error") else status)
        # A paused or stopped camera is slow on purpose: no warning for it.
        _show(row.fps, f"{fps:.1f} / {target:g}" if target else f"{fps:.1f}",
              colour=fps_colour(fps, target) if status == CameraStatus.RUNNING else None)
        _show(row.dropped, f"{dropped} ({100 * dropped / max(frames, 1):.1f} %)",
              f"{dropped} of {frames} frames", dropped_colour(dropped, frames))

    # --- device ------------------------------------------------------------------------------

    def update_device(self, device: Device) -> None:
        """Show one device-status event and add it to the histories; parts it lacks
        stay as they were."""
        values = self.device_values
        cpu, memory, storage = device.cpu, device.memory, device.storage
        network, battery = device.network, device.battery
        _show(values["device"], ds.device_text(device), ds.device_tooltip(device))
        if cpu:
            _show(values["cpu"], ds.cpu_text(cpu), ds.cpu_tooltip(cpu))
        if memory:
            _show(values["memory"], ds.memory_text(memory))
        if storage:
            _show(values["disk"], ds.storage_text(storage), ds.storage_tooltip(storage),
                  ds.storage_colour(storage))
        if network:
            _show(values["network"], ds.network_text(network), ds.network_tooltip(network),
                  ds.network_colour(network))
        _show(values["battery"], ds.battery_text(battery), ds.battery_tooltip(battery),
              ds.battery_colour(battery))
        self.no_battery.setVisible(battery is None)
        self._show_alerts(ds.alerts(device))

        now = device.time
        history = self.device_history
        history["cpu"].add(now, cpu["usage_percent"] if cpu else None)
        history["memory"].add(now, memory["used_percent"] if memory else None)
        history["disk"].add(now, storage["write_rate_bps"] / ds.MB if storage else None)
        history["battery"].add(now, battery["percent"] if battery else None)

    def _show_alerts(self, alerts: list[tuple[str, QColor]]) -> None:
        """The device error and warnings, on top of the device values, in their colours."""
        lines = [f'<span style="color:{colour.name()}"><b>{"✖" if colour == ALARM else "⚠"}'
                 f"</b> {html.escape(text)}</span>" for text, colour in alerts]
        self.alerts_label.setText("<br>".join(lines))
        self.alerts_label.setVisible(bool(lines))

    def _on_engine_gone(self, reason: str) -> None:
        """No figure outlives the engine that measured it."""
        for label in self.device_values.values():
            _show(label, "—", "the engine is not running")
        self.alerts_label.hide()
        for row in self.camera_rows.values():
            _show(row.fps, "—")
            _show(row.dropped, "—")
        self._append(event_line({"event": "engine lost", "message": reason}), error=True)

    # --- event log ---------------------------------------------------------------------------

    def log_lines(self) -> list[str]:
        """The log as plain text lines, oldest first."""
        return self.log.toPlainText().splitlines()

    def _on_event(self, event: Event) -> None:
        """Log an event, in its generic wire form (kind and the fields that say what)."""
        kind = event.NAME
        if kind in UNLOGGED_EVENTS:
            return
        wire = EVENTS.to_wire(event)
        relayed = kind in RELAYED_ERROR_EVENTS
        self._relayed_error = wire.get("message", str(wire)) if relayed else None
        self._append(event_line(wire), error=kind in ERROR_EVENTS)

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


def _plain_label(text: str = "") -> QLabel:
    """A label for text from the engine or the device: a name like "<b>" stays as it is."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)  # a long disk line wraps rather than starve the event log
    return label


def _show(label: QLabel, text: str, tooltip: str = "", colour: QColor | None = None) -> None:
    label.setText(text)
    label.setToolTip(tooltip)
    palette = QPalette()  # an empty palette: the label inherits its normal colours again
    if colour is not None:
        palette.setColor(QPalette.ColorRole.WindowText, colour)
    label.setPalette(palette)
