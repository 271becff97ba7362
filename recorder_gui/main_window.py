"""The main window: live tiles, Record / Pause / Stop, and the panels around them.

Everything goes through the EngineLink handed to the constructor. The window never
owns a recording: closing it can leave the engine recording in the background. The
elapsed time shown is the engine's (status, then every stats event), not a GUI clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine import __version__
from engine.wire import commands as cmd
from engine.wire.events import (
    CameraFailed,
    Device,
    RecordingFinalized,
    RecordingRecovered,
    RecordingStarted,
    RecordingStopped,
    RingsChanged,
    Stats,
)
from engine.wire.paths import log_path
from recorder_gui.cameras_panel import CamerasPanel
from recorder_gui.engine_link import EngineLink
from recorder_gui.health_panel import HealthPanel
from recorder_gui.notice_bar import NoticeBar
from recorder_gui.recording_panel import RecentRecording, RecordingPanel, open_in_file_manager
from recorder_gui.status_bar import TakeStatus, format_elapsed
from recorder_gui.status_icons import DeviceIndicators
from recorder_gui.tiles import TileGrid
from recorder_gui.zoom import ZoomDialog

APP_NAME = "Recorder Workstation"
ERROR_SHOWN_MS = 15_000
# Application-wide (the zoom windows too). Stop is deliberately not Ctrl+S (Save) and
# needs two modifiers' worth of intent: ending a take by accident loses the rest of it.
SHORTCUTS = {"record": "Ctrl+R", "pause": "Ctrl+Shift+P", "stop": "Ctrl+Shift+X",
             "zoom_close": "Esc"}
SHORTCUT_HELP = (("Record", SHORTCUTS["record"]), ("Pause / resume writing", SHORTCUTS["pause"]),
                 ("Stop the recording", SHORTCUTS["stop"]),
                 ("Open a camera full size", "double-click its tile"),
                 ("Close a full-size view", SHORTCUTS["zoom_close"]))
FIRST_SIZE = (1400, 900)  # the first window, where the screen has room for it
SCREEN_SHARE = 0.92  # else this share of the screen's free area


def about_text() -> str:
    """The About box: the name and version a user quotes in a bug report."""
    return (f"<h3>{APP_NAME} {__version__}</h3>"
            "<p>Records several cameras in lock-step: every file of a recording holds"
            " exactly the same frames.</p>")


def shortcuts_text() -> str:
    rows = "".join(f"<tr><td>{what}</td><td><b>{key}</b></td></tr>" for what, key in SHORTCUT_HELP)
    return f"<table cellspacing=6>{rows}</table>"


def saved_text(event: RecordingFinalized) -> str:
    """'Saved 4 × 275 frames to <folder>' (or each camera's count where they differ)."""
    frames = RecentRecording(Path(event.folder), event.status, dict(event.frames or {}))
    return f"Saved {frames.frames_text} frames to {event.folder}"


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
        self.paused = False  # writing of the take is paused; the cameras and tiles go on
        self.frozen = False  # Freeze preview: the cameras themselves are held
        self._stop_requested = False  # this window asked for the stop under way
        self._recoveries_shown: set[str] = set()  # folders already reported as recovered
        self._elapsed_s = 0.0  # the engine's figure for the recording in progress
        self._zooms: list[ZoomDialog] = []
        # The window owns the timer that clears an error's colour, so it dies with the window.
        self._error_colour = QTimer(self, singleShot=True, interval=ERROR_SHOWN_MS)
        self._error_colour.timeout.connect(lambda: self.statusBar().setStyleSheet(""))

        self.notice = NoticeBar()
        self.tiles = TileGrid()
        self.tiles.tileDoubleClicked.connect(self.open_zoom)
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.setSpacing(0)
        centre_layout.addWidget(self.notice)
        centre_layout.addWidget(self.tiles, 1)
        self.setCentralWidget(centre)
        # The panel's Open folder goes through the window's, which has the fallback.
        self.recording_panel = RecordingPanel(link, open_folder=self.open_folder)
        self.cameras_panel = CamerasPanel(link)
        self.health_panel = HealthPanel(link)
        self.docks = [
            self._dock("Recording", self.recording_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            self._dock("Health and events", self.health_panel,
                       Qt.DockWidgetArea.BottomDockWidgetArea),
            self._dock("Cameras", self.cameras_panel, Qt.DockWidgetArea.BottomDockWidgetArea),
        ]
        self._default_layout()
        self._build_toolbar()
        self._build_menus()
        self._default_state = self.saveState()  # what Reset layout goes back to
        self.take_status = TakeStatus(link)
        self.device_indicators = DeviceIndicators(link)
        self.statusBar().addPermanentWidget(self.take_status)
        self.statusBar().addPermanentWidget(self.device_indicators)

        link.rings_changed.connect(self._on_rings_changed)
        link.stats.connect(self._on_stats)
        link.recording_started.connect(self._on_recording_started)
        link.recording_stopped.connect(self._on_recording_stopped)
        link.recording_finalized.connect(self._on_recording_finalized)
        link.recording_recovered.connect(self._on_recording_recovered)
        link.paused.connect(lambda _event: self._on_paused(True))
        link.resumed.connect(lambda _event: self._on_paused(False))
        link.frozen.connect(lambda _event: self._on_frozen(True))
        link.unfrozen.connect(lambda _event: self._on_frozen(False))
        link.errorRaised.connect(self.show_error)
        link.camera_failed.connect(self._on_camera_failed)
        link.disconnected.connect(self._on_disconnected)
        link.reconnected.connect(self._on_reconnected)

        self._restore_geometry()
        self.sync_from_engine()

    # --- layout ------------------------------------------------------------------------

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        scroll = QScrollArea()  # a panel's minimum size must not force the window's
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # Panels fit their dock's width (long texts elide or wrap): never a sideways scroll.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Docked or hidden, not floating: a small drag used to tear a panel off, and it
        # came back floating behind the window.
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetMovable)
        scroll.setWidget(widget)
        dock.setWidget(scroll)
        self.addDockWidget(area, dock)
        return dock

    def _default_layout(self) -> None:
        """Recording on the right, Health and Cameras tabbed below the tiles."""
        recording, health, cameras = self.docks
        for dock in self.docks:
            dock.setFloating(False)
            dock.show()
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, recording)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, health)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, cameras)
        self.tabifyDockWidget(health, cameras)
        health.raise_()
        # First-run proportions: the tiles get most of the window (a saved state wins).
        self.resizeDocks([recording], [460], Qt.Orientation.Horizontal)
        self.resizeDocks([health], [250], Qt.Orientation.Vertical)

    def reset_layout(self) -> None:
        """View > Reset layout: every panel docked where it starts, none hidden."""
        self.restoreState(self._default_state)
        for dock in self.docks:
            dock.setFloating(False)
            dock.show()

    def _build_toolbar(self) -> None:
        bar = QToolBar("Recording", self)
        bar.setObjectName("recording-toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.record_action = self._action(bar, "● Record", "record", self.start_recording)
        self.pause_action = self._action(bar, "❚❚ Pause", "pause", self.toggle_pause)
        self.stop_action = self._action(bar, "■ Stop", "stop", self.stop_recording)
        bar.addSeparator()
        self.freeze_action = QAction("❄ Freeze preview", self)
        self.freeze_action.setCheckable(True)
        self.freeze_action.setToolTip("Hold every camera at one frame (a take gets no frames "
                                      "meanwhile); Pause only stops writing")
        self.freeze_action.triggered.connect(self.toggle_freeze)
        bar.addAction(self.freeze_action)
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
        action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.setToolTip(f"{text.split(' ', 1)[1]} ({SHORTCUTS[name]})")
        action.triggered.connect(slot)
        bar.addAction(action)
        return action

    def _build_menus(self) -> None:
        menus = self.menuBar()
        recording = menus.addMenu("&Recording")
        for action in (self.record_action, self.pause_action, self.stop_action,
                       self.freeze_action):
            recording.addAction(action)
        recording.addSeparator()
        self.restart_action = recording.addAction("Restart &engine")
        self.restart_action.triggered.connect(self.restart_engine)
        self.restart_action.setEnabled(False)
        view = menus.addMenu("&View")
        for dock in self.docks:
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        self.reset_layout_action = view.addAction("&Reset layout")
        self.reset_layout_action.triggered.connect(self.reset_layout)
        help_menu = menus.addMenu("&Help")
        self.shortcuts_action = help_menu.addAction("&Keyboard shortcuts")
        self.shortcuts_action.triggered.connect(
            lambda: QMessageBox.information(self, "Keyboard shortcuts", shortcuts_text()))
        self.engine_log_action = help_menu.addAction("Engine &log…")
        self.engine_log_action.triggered.connect(self.show_engine_log)
        self.about_action = help_menu.addAction(f"&About {APP_NAME}")
        self.about_action.triggered.connect(
            lambda: QMessageBox.about(self, f"About {APP_NAME}", about_text())
        )

    # --- engine state -----------------------------------------------------------------------

    def sync_from_engine(self) -> None:
        """Take the engine's state as it is (it may have been recording before we opened,
        and may have found problems at start that no window was there to hear)."""
        status = self.link.command(cmd.Status())
        rings = self.link.command(cmd.Rings())
        if status is None or rings is None:
            return
        self.tiles.set_rings(rings)
        self.tiles.set_stats(status["cameras"])
        recording = status.get("recording")
        self.recording = recording is not None
        self.paused = bool(recording and recording["paused"])
        self.frozen = bool(status.get("frozen"))
        self._elapsed_s = float(recording["elapsed_s"]) if recording else 0.0
        if status.get("device"):
            device = Device(**status["device"])
            self.device_indicators.update_device(device)
            self.take_status.update_device(device)
        notices = status["engine"].get("notices") or []
        if notices:
            self.notice.show_notice("warning", "The engine started with problems: "
                                    + "; ".join(notices))
        for summary in status["engine"].get("recovered") or []:
            self._report_recovery(summary, also=notices)
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
        self._stop_requested = False
        self._elapsed_s = 0.0
        if self.notice.level != "error":
            self.notice.dismiss()
        self._apply_recording_state()

    def _on_recording_stopped(self, event: RecordingStopped) -> None:
        self.recording = self.paused = False
        self._elapsed_s = 0.0
        self.notice.show_notice("info", f"Stopped; finishing the files of {event.folder}…")
        self._apply_recording_state()

    def _on_recording_finalized(self, event: RecordingFinalized) -> None:
        """Say what was saved; loudly when the take ended without this window asking."""
        requested, self._stop_requested = self._stop_requested, False
        actions = self._folder_actions(Path(event.folder))
        if requested and event.status == "finalized":
            self.notice.show_notice("info", saved_text(event) + ".", actions)
            return
        reason = "; ".join(event.errors) or "stopped from outside this window"
        self.notice.show_notice(
            "error" if event.errors else "warning",
            f"The recording stopped without you asking it to: {reason}. "
            f"{saved_text(event)} (status {event.status}).", actions)

    def _on_recording_recovered(self, event: RecordingRecovered) -> None:
        self._report_recovery({**event.summary, "folder": event.folder})

    def _report_recovery(self, summary: dict[str, Any], also: list[str] | None = None) -> None:
        """Say what the engine salvaged of a take a crash interrupted (once per take: the
        event and the status answer may both tell)."""
        folder = str(summary["folder"])
        if folder in self._recoveries_shown:
            return
        self._recoveries_shown.add(folder)
        cut = ", ".join(f"{camera} {count}" for camera, count
                        in (summary.get("frames_dropped") or {}).items() if count) or "none"
        text = (f"Recovered the interrupted recording {folder}: {summary.get('frames', 0):,} "
                f"frames per camera kept (frames cut: {cut}).")
        if also:
            text += " The engine also reported: " + "; ".join(also)
        self.notice.show_notice("warning", text, self._folder_actions(Path(folder)))

    def show_engine_log(self) -> None:
        """Where the engine writes its log, as the engine says (where it would write it,
        if no engine answers), with Open folder and Copy path; the box is `log_box`."""
        status = self.link.command(cmd.Status()) if self.link.liveness != "lost" else None
        if status is not None:
            path = Path(status["engine"]["log"])
            text = f"The engine writes its log to\n{path}"
        else:
            path = log_path()
            text = f"The engine is not running. Its log is\n{path}"
        box = QMessageBox(QMessageBox.Icon.Information, "Engine log",
                          f"{text}\n\nOlder lines are kept beside it ({path.name}.1, …).",
                          QMessageBox.StandardButton.Close, self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        open_folder = box.addButton("Open folder", QMessageBox.ButtonRole.ActionRole)
        copy_path = box.addButton("Copy path", QMessageBox.ButtonRole.ActionRole)
        open_folder.clicked.connect(lambda: self.open_folder(path.parent))
        copy_path.clicked.connect(lambda: QGuiApplication.clipboard().setText(str(path)))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.log_box = box
        box.open()

    def _folder_actions(self, folder: Path) -> list[tuple[str, Any]]:
        return [("Open folder", lambda: self.open_folder(folder)),
                ("Copy path", lambda: QGuiApplication.clipboard().setText(str(folder)))]

    def open_folder(self, folder: Path) -> None:
        """Open the folder in the file manager; where none answers, show and copy the path."""
        if not open_in_file_manager(folder):
            QGuiApplication.clipboard().setText(str(folder))
            self.notice.show_notice(
                "info", f"No file manager answered. The folder is {folder} "
                "(the path is on the clipboard).", self._folder_actions(folder)[1:])

    def _on_paused(self, paused: bool) -> None:
        self.paused = paused
        self._apply_recording_state()

    def _on_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        self._apply_recording_state()

    def _on_camera_failed(self, event: CameraFailed) -> None:
        self.show_error(f"{event.camera} failed: {event.message}")

    def _apply_recording_state(self) -> None:
        self.tiles.set_recording(self.recording, self.paused)
        self.tiles.set_frozen(self.frozen)  # held on purpose: still pictures are no loss
        self.take_status.set_take(self.recording, self.paused, self._elapsed_s)
        self._update_actions()
        self._show_elapsed()

    def _update_actions(self) -> None:
        connected = self.link.liveness != "lost"
        self.record_action.setEnabled(connected and not self.recording)
        self.pause_action.setEnabled(connected and self.recording)
        self.pause_action.setText("▶ Resume" if self.paused else "❚❚ Pause")
        self.stop_action.setEnabled(connected and self.recording)
        self.freeze_action.setEnabled(connected)
        self.freeze_action.setChecked(self.frozen)

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

    def toggle_freeze(self) -> None:
        """Freeze preview on or off (the old Pause: the cameras themselves are held)."""
        self.link.command(cmd.Unfreeze() if self.frozen else cmd.Freeze())
        self._update_actions()  # the checked state follows the engine's answer, not the click

    def stop_recording(self) -> None:
        if self.recording:
            self._stop_requested = True
            if self.link.command(cmd.Stop(wait=False)) is None:  # files finish in the background
                self._stop_requested = False

    def show_error(self, message: str) -> None:
        """Errors are shown, never swallowed: status bar now, event log for good."""
        self.statusBar().setStyleSheet("color: #d22;")
        self.statusBar().showMessage(message, ERROR_SHOWN_MS)
        self._error_colour.start()

    def _on_disconnected(self, reason: str) -> None:
        was_recording = self.recording
        self.recording = self.paused = self.frozen = False
        self._apply_recording_state()
        self.restart_action.setEnabled(self.link.can_restart)
        text = (f"The engine is not running: {reason}. The tiles show no signal and nothing "
                "is being recorded.")
        if was_recording:
            text += (" The recording under way was cut off; a restarted engine finishes its "
                     "files from what reached the disk.")
        actions = [("Restart engine", self.restart_engine)] if self.link.can_restart else []
        self.notice.show_notice("error", text, actions)
        self.show_error(f"lost the engine: {reason}")

    def restart_engine(self) -> None:
        self.notice.show_notice("info", "Starting the engine…")
        QGuiApplication.processEvents()
        if not self.link.restart_engine():
            self._on_disconnected("it did not start again; see its log")

    def _on_reconnected(self) -> None:
        self.owns_engine = self.link.client.launched
        self.restart_action.setEnabled(False)
        self.notice.show_notice("info", "The engine is running again. A recording it "
                                "finds unfinished is recovered and reported here.")
        self.sync_from_engine()
        for panel in (self.recording_panel, self.cameras_panel):
            reload = getattr(panel, "reload", None)
            if reload is not None:
                reload()

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
        self.recording_panel.follow_output()  # Recent recordings of the folder shown
        geometry = self._settings.value("geometry")
        state = self._settings.value("windowState")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self.fit_screen(first=geometry is None)

    def fit_screen(self, *, first: bool = False) -> None:
        """The first window is FIRST_SIZE where the screen has room, else SCREEN_SHARE of
        it; a restored one larger than its screen (a smaller monitor now) shrinks to fit."""
        screen = self.screen().availableGeometry()
        width = min(FIRST_SIZE[0] if first else self.width(), int(screen.width() * SCREEN_SHARE))
        height = min(FIRST_SIZE[1] if first else self.height(),
                     int(screen.height() * SCREEN_SHARE))
        if first or width < self.width() or height < self.height():
            self.resize(width, height)
            frame = self.frameGeometry()
            frame.moveCenter(screen.center())
            self.move(frame.topLeft())

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
