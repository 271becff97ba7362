"""The main window: live tiles, Record / Pause / Stop, and the panels around them.

Everything goes through the EngineLink handed to the constructor. The window never
owns a recording: closing it can leave the engine recording in the background. The
elapsed time shown is the engine's (status, then every stats event), not a GUI clock.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QToolBar,
    QWidget,
)

from engine import __version__
from engine.wire import commands as cmd
from engine.wire.events import (
    CameraFailed,
    Device,
    RecordingStarted,
    RecordingStopped,
    RingsChanged,
    Stats,
)
from recorder_gui.cameras_panel import CamerasPanel
from recorder_gui.engine_link import EngineLink
from recorder_gui.health_panel import HealthPanel
from recorder_gui.recording_panel import RecordingPanel
from recorder_gui.status_icons import DeviceIndicators
from recorder_gui.tiles import TileGrid
from recorder_gui.zoom import ZoomDialog

APP_NAME = "Recorder Workstation"
ERROR_SHOWN_MS = 15_000
SHORTCUTS = {"record": "Ctrl+R", "pause": "Ctrl+P", "stop": "Ctrl+S"}


def about_text() -> str:
    """The About box: the name and version a user quotes in a bug report."""
    return (f"<h3>{APP_NAME} {__version__}</h3>"
            "<p>Records several cameras in lock-step: every file of a recording holds"
            " exactly the same frames.</p>")


def format_elapsed(seconds: float) -> str:
    whole = int(max(0.0, seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class MainWindow(QMainWindow):
    def __init__(
        self, link: EngineLink, settings: QSettings | None = None, *, owns_engine: bool = False
    ) -> None:
        super().__init__()
        self.link = link
        self.owns_engine = owns_engine
        self._settings = settings or QSettings("recorder-workstation", "recorder-gui")
        self.setWindowTitle(f"{APP_NAME} {__version__}")
        self.recording = False
        self.paused = False
        self._elapsed_s = 0.0  # the engine's figure for the recording in progress
        self._zooms: list[ZoomDialog] = []
        # The window owns the timer that clears an error's colour, so it dies with the window.
        self._error_colour = QTimer(self, singleShot=True, interval=ERROR_SHOWN_MS)
        self._error_colour.timeout.connect(lambda: self.statusBar().setStyleSheet(""))

        self.tiles = TileGrid()
        self.tiles.tileDoubleClicked.connect(self.open_zoom)
        self.setCentralWidget(self.tiles)
        self.recording_panel = RecordingPanel(link)
        self.cameras_panel = CamerasPanel(link)
        self.health_panel = HealthPanel(link)
        recording = self._dock(
            "Recording", self.recording_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        health = self._dock(
            "Health and events", self.health_panel, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        cameras = self._dock("Cameras", self.cameras_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(health, cameras)
        health.raise_()
        # First-run proportions: the tiles get most of the window (a saved state wins).
        self.resizeDocks([recording], [440], Qt.Orientation.Horizontal)
        self.resizeDocks([health], [250], Qt.Orientation.Vertical)
        self._build_toolbar()
        self._build_help_menu()
        self._state_label = QLabel()
        self.device_indicators = DeviceIndicators(link)
        self.statusBar().addPermanentWidget(self.device_indicators)
        self.statusBar().addPermanentWidget(self._state_label)

        link.rings_changed.connect(self._on_rings_changed)
        link.stats.connect(self._on_stats)
        link.recording_started.connect(self._on_recording_started)
        link.recording_stopped.connect(self._on_recording_stopped)
        link.paused.connect(lambda _event: self._on_paused(True))
        link.resumed.connect(lambda _event: self._on_paused(False))
        link.errorRaised.connect(self.show_error)
        link.camera_failed.connect(self._on_camera_failed)
        link.disconnected.connect(self._on_disconnected)

        self._restore_geometry()
        self.sync_from_engine()

    # --- layout ------------------------------------------------------------------------

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        scroll = QScrollArea()  # a panel's minimum size must not force the window's
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(widget)
        dock.setWidget(scroll)
        self.addDockWidget(area, dock)
        return dock

    def _build_toolbar(self) -> None:
        bar = QToolBar("Recording", self)
        bar.setObjectName("recording-toolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.record_action = self._action(bar, "● Record", "record", self.start_recording)
        self.pause_action = self._action(bar, "❚❚ Pause", "pause", self.toggle_pause)
        self.stop_action = self._action(bar, "■ Stop", "stop", self.stop_recording)
        bar.addSeparator()
        self.elapsed_label = QLabel("00:00:00")
        self.elapsed_label.setObjectName("elapsed")
        self.elapsed_label.setStyleSheet("font: bold 16pt monospace; padding: 0 12px;")
        bar.addWidget(self.elapsed_label)
        self.addToolBar(bar)
        self._update_actions()

    def _action(self, bar: QToolBar, text: str, name: str, slot: Any) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(SHORTCUTS[name]))
        action.setToolTip(f"{text.split(' ', 1)[1]} ({SHORTCUTS[name]})")
        action.triggered.connect(slot)
        bar.addAction(action)
        return action

    def _build_help_menu(self) -> None:
        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = help_menu.addAction(f"&About {APP_NAME}")
        self.about_action.triggered.connect(
            lambda: QMessageBox.about(self, f"About {APP_NAME}", about_text())
        )

    # --- engine state -----------------------------------------------------------------------

    def sync_from_engine(self) -> None:
        """Take the engine's state as it is (it may have been recording before we opened)."""
        status = self.link.command(cmd.Status())
        rings = self.link.command(cmd.Rings())
        if status is None or rings is None:
            return
        self.tiles.set_rings(rings)
        self.tiles.set_stats(status["cameras"])
        recording = status.get("recording")
        self.recording = recording is not None
        self.paused = bool(recording and recording["paused"])
        self._elapsed_s = float(recording["elapsed_s"]) if recording else 0.0
        self._state_label.setText(f"engine {status['engine']['state']}")
        if status.get("device"):
            self.device_indicators.update_device(Device(**status["device"]))
        self._apply_recording_state()

    def _on_rings_changed(self, event: RingsChanged) -> None:
        self.tiles.set_rings(event.rings)

    def _on_stats(self, event: Stats) -> None:
        self.tiles.set_stats(event.cameras)
        if event.elapsed_s is not None:
            self._elapsed_s = event.elapsed_s
            self._show_elapsed()

    def _on_recording_started(self, event: RecordingStarted) -> None:
        self.recording, self.paused = True, False
        self._elapsed_s = 0.0
        self.statusBar().showMessage(f"recording to {event.folder}", 5000)
        self._apply_recording_state()

    def _on_recording_stopped(self, event: RecordingStopped) -> None:
        self.recording = self.paused = False
        self.statusBar().showMessage(f"stopped; assembling {event.folder}", 5000)
        self._apply_recording_state()

    def _on_paused(self, paused: bool) -> None:
        self.paused = paused
        self._apply_recording_state()

    def _on_camera_failed(self, event: CameraFailed) -> None:
        self.show_error(f"{event.camera} failed: {event.message}")

    def _apply_recording_state(self) -> None:
        self.tiles.set_recording(self.recording, self.paused)
        self._update_actions()
        self._show_elapsed()

    def _update_actions(self) -> None:
        self.record_action.setEnabled(not self.recording)
        self.pause_action.setEnabled(self.recording)
        self.pause_action.setText("▶ Resume" if self.paused else "❚❚ Pause")
        self.stop_action.setEnabled(self.recording)

    def elapsed_text(self) -> str:
        return format_elapsed(self._elapsed_s) + (" (PAUSED)" if self.paused else "")

    def _show_elapsed(self) -> None:
        self.elapsed_label.setText(self.elapsed_text())
        colour = "#d22" if self.recording and not self.paused else "#c90" if self.paused else ""
        self.elapsed_label.setStyleSheet(
            f"font: bold 16pt monospace; padding: 0 12px; color: {colour or 'palette(text)'};"
        )

    # --- commands -----------------------------------------------------------------------

    def start_recording(self) -> None:
        if not self.recording:
            self.link.command(self.recording_panel.record_command())

    def toggle_pause(self) -> None:
        if self.recording:
            self.link.command(cmd.Resume() if self.paused else cmd.Pause())

    def stop_recording(self) -> None:
        if self.recording:
            self.link.command(cmd.Stop(wait=False))  # files are assembled in the background

    def show_error(self, message: str) -> None:
        """Errors are shown, never swallowed: status bar now, event log for good."""
        self.statusBar().setStyleSheet("color: #d22;")
        self.statusBar().showMessage(message, ERROR_SHOWN_MS)
        self._error_colour.start()

    def _on_disconnected(self, reason: str) -> None:
        self._state_label.setText("engine not running")
        self.show_error(f"lost the engine: {reason}")

    def open_zoom(self, camera_id: str) -> None:
        tile = self.tiles.tiles.get(camera_id)
        if tile is None:
            return
        dialog = ZoomDialog(tile, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _result: self._zooms.remove(dialog))
        self._zooms.append(dialog)
        dialog.show()

    # --- closing and persistence -----------------------------------------------------------

    def _restore_geometry(self) -> None:
        output = self._settings.value("recording/output")
        codec = self._settings.value("recording/codec")
        if output:
            self.recording_panel.output_edit.setText(str(output))
        if codec:
            self.recording_panel.codec_combo.setCurrentText(str(codec))
        geometry = self._settings.value("geometry")
        state = self._settings.value("windowState")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:  # first start: 1400x900, or the whole screen where that is smaller
            screen = self.screen().availableGeometry()
            self.resize(min(1400, screen.width()), min(900, screen.height()))
        if state is not None:
            self.restoreState(state)

    def ask_on_close(self) -> str:
        """"stop", "keep" or "cancel": what to do with a recording when the window closes."""
        box = QMessageBox(self)
        box.setWindowTitle("Recording in progress")
        box.setText("A recording is running. Stop it, or keep it recording in the background?")
        stop = box.addButton("Stop recording", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep recording", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return "stop" if clicked is stop else "keep" if clicked is keep else "cancel"

    def closeEvent(self, event: QCloseEvent) -> None:
        choice = self.ask_on_close() if self.recording else "none"
        if choice == "cancel":
            event.ignore()
            return
        if choice == "stop":
            self.link.command(cmd.Stop(wait=True))
        if self.owns_engine and choice != "keep":
            self.link.command(cmd.Shutdown())
        self._settings.setValue("recording/output", self.recording_panel.output_edit.text())
        self._settings.setValue("recording/codec", self.recording_panel.codec_combo.currentText())
        self._settings.setValue("geometry", self.saveGeometry())
        self._settings.setValue("windowState", self.saveState())
        self.tiles.detach_all()
        for zoom in list(self._zooms):
            zoom.close()
        event.accept()
