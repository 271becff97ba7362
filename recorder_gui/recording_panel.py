"""The recording panel: where and how to record, live per-camera figures, recent recordings.

Everything comes through the EngineLink handed in: the rig's defaults, the export formats
and any running recording from one `status` call at start, then engine events. Recent
recordings are what the engine's `recordings` command reads from the folders' manifests;
each can be exported (Export… or its context menu), the engine doing the work.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.specs import CODEC_CHOICES
from engine.wire import commands as cmd
from engine.wire.events import (
    AssemblyProgress,
    RecordingFinalized,
    RecordingStarted,
    RecordingStopped,
)
from engine.wire.status import CameraStatus
from recorder_gui.elided_label import ElidedLabel
from recorder_gui.engine_link import EngineLink
from recorder_gui.export_status import ExportStatus, format_title

RECENT_LIMIT = 50

WARNING = QColor("#e67e00")
ALARM = QColor("#d32f2f")
FPS_WARNING_BELOW = 0.95  # of the target frame rate
FPS_ALARM_BELOW = 0.80
DROPPED_WARNING_ABOVE = 0.01  # of the frames captured
DROPPED_ALARM_ABOVE = 0.05

COLUMNS = ("Camera", "Status", "FPS", "Captured", "Dropped", "Lag")
COLUMN_TIPS = {"Lag": "frames captured but not yet written to the file (the writer's lag)",
               "Captured": "frames captured since the camera started (the status bar counts "
                           "the frames the take recorded)"}
FPS_COLUMN, FRAMES_COLUMN, DROPPED_COLUMN, LAG_COLUMN = 2, 3, 4, 5


def file_manager_available() -> bool:
    """Whether opening a folder shows anything: on Linux, xdg-open must exist and name a
    handler for folders (a bare Xvfb or kiosk machine has none, and then xdg-open fails
    silently)."""
    if not sys.platform.startswith("linux"):
        return True
    if shutil.which("xdg-open") is None or shutil.which("xdg-mime") is None:
        return False
    try:
        found = subprocess.run(["xdg-mime", "query", "default", "inode/directory"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(found.stdout.strip())


def open_in_file_manager(folder: Path) -> bool:
    """Show the folder in the file manager; False when there is none to show it."""
    return file_manager_available() and QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def fps_colour(fps: float, target: float | None) -> QColor | None:
    """Warning colour for a camera that falls behind its target rate; None when fine."""
    if not target:
        return None
    if fps < FPS_ALARM_BELOW * target:
        return ALARM
    if fps < FPS_WARNING_BELOW * target:
        return WARNING
    return None


def dropped_colour(dropped: int, frames: int) -> QColor | None:
    """Warning colour for the share of frames lost; None when fine."""
    share = dropped / max(frames, 1)
    if share > DROPPED_ALARM_ABOVE:
        return ALARM
    if share > DROPPED_WARNING_ABOVE:
        return WARNING
    return None


@dataclass(frozen=True)
class RecentRecording:
    """One recording folder as the recent list shows it."""

    folder: Path
    status: str
    frames: dict[str, int | None] = field(default_factory=dict)
    started: str = ""  # ISO 8601 UTC, sorts chronologically

    @classmethod
    def from_listing(cls, entry: dict[str, Any]) -> RecentRecording:
        """One entry of the engine's `recordings` answer."""
        return cls(Path(entry["folder"]), entry["status"], dict(entry["frames"]),
                   entry["started_utc"])

    @property
    def frames_text(self) -> str:
        """'4 × 250' when every camera holds the same count (a finished take), else each
        camera's."""
        counts = list(self.frames.values())
        if counts and None not in counts and len(set(counts)) == 1:
            return f"{len(counts)} × {counts[0]:,}"
        return self.frames_detail

    @property
    def frames_detail(self) -> str:
        return ", ".join(f"{camera} {'—' if count is None else count}"
                         for camera, count in self.frames.items())


class RecordingPanel(QWidget):
    """Output options for the next recording, the current one's state and figures, and
    the recordings made so far."""

    def __init__(
        self, link: EngineLink, parent: QWidget | None = None, *,
        open_folder: Callable[[Path], object] | None = None,
    ) -> None:
        super().__init__(parent)
        self.link = link
        self._open_folder = open_folder or open_in_file_manager
        self._current: str | None = None  # folder of the recording in progress
        self._paused = False
        self._assembling: dict[str, float] = {}  # folder -> fraction done

        self._scanned: Path | None = None  # the output folder the recent list was read from
        self.output_edit = QLineEdit()
        self.output_edit.editingFinished.connect(self._output_edited)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("date and time")
        self.codec_combo = QComboBox()
        self.codec_combo.addItems(CODEC_CHOICES)

        self.state_label = QLabel()
        self.folder_label = ElidedLabel("—")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.hide()

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(24)
        for column, title in enumerate(COLUMNS):
            header_item = self.table.horizontalHeaderItem(column)
            if header_item is not None:
                header_item.setToolTip(COLUMN_TIPS.get(title, ""))
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.spread_label = QLabel()
        self.spread_label.setWordWrap(True)

        self.recent = QTreeWidget()
        self.recent.setHeaderLabels(("Recording", "Status", "Frames"))
        self.recent.setRootIsDecorated(False)
        self.recent.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        recent_header = self.recent.header()
        recent_header.setStretchLastSection(False)
        recent_header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            recent_header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.recent.itemDoubleClicked.connect(self._open_selected)
        self.recent.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.recent.customContextMenuRequested.connect(self._recent_menu)
        self.open_button = QPushButton("Open folder")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self._open_selected)
        self.export_menu = QMenu("Export to", self)  # an action per format the engine offers
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Export the selected recording to another format")
        self.export_button.setMenu(self.export_menu)
        self.export_button.setEnabled(False)
        self.recent.itemSelectionChanged.connect(self._selection_changed)
        self.exports = ExportStatus(link, open_folder=self._open_folder)

        self._lay_out(browse)
        link.stats.connect(lambda event: self.update_stats(event.cameras, event.spread))
        link.recording_started.connect(self._on_started)
        link.paused.connect(lambda _event: self._on_paused(True))
        link.resumed.connect(lambda _event: self._on_paused(False))
        link.recording_stopped.connect(self._on_stopped)
        link.assembly_progress.connect(self._on_assembly_progress)
        link.recording_finalized.connect(self._on_finalized)
        link.recording_recovered.connect(lambda _event: self.refresh_recent())
        link.disconnected.connect(self._on_engine_gone)
        self._load_status()

    def reload(self) -> None:
        """Read everything again from the engine (a restarted one, say)."""
        self._assembling.clear()
        self.progress.hide()
        self._load_status()

    def follow_output(self) -> None:
        """List the recordings of the output folder shown, if another was listed."""
        self._output_edited()

    def _lay_out(self, browse: QPushButton) -> None:
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.output_edit)
        folder_row.addWidget(browse)
        options = QGroupBox("Next recording")
        form = QFormLayout(options)
        form.addRow("Output folder", folder_row)
        form.addRow("Name", self.name_edit)
        form.addRow("Codec", self.codec_combo)

        current = QGroupBox("Current recording")
        current_form = QFormLayout(current)
        current_form.addRow("State", self.state_label)
        current_form.addRow("Folder", self.folder_label)
        current_form.addRow(self.progress)

        cameras = QGroupBox("Cameras")
        cameras_layout = QVBoxLayout(cameras)
        cameras_layout.addWidget(self.table)
        cameras_layout.addWidget(self.spread_label)

        recent = QGroupBox("Recent recordings")
        recent_layout = QVBoxLayout(recent)
        recent_layout.addWidget(self.recent)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.open_button)
        recent_layout.addLayout(buttons)
        recent_layout.addWidget(self.exports)

        layout = QVBoxLayout(self)
        for box in (options, current, cameras, recent):
            layout.addWidget(box)

    def _load_status(self) -> None:
        """Defaults from the rig and, when re-attaching, the recording already running."""
        status = self.link.command(cmd.Status())
        if status is not None:
            rig_options = status["rig"]["recording"]
            self.output_edit.setText(str(rig_options.get("output_dir", "")))
            codec = rig_options.get("codec")
            if codec and self.codec_combo.findText(codec) < 0:
                self.codec_combo.addItem(codec)
            if codec:
                self.codec_combo.setCurrentText(codec)
            self._offer_exports(status["engine"].get("export_formats") or [])
            recording = status.get("recording")
            self._current = recording["folder"] if recording else None
            self._paused = status["engine"]["state"] == "paused"
            self.update_stats(status["cameras"], status["spread"])
        self._show_state()
        self.refresh_recent()

    # --- options ---------------------------------------------------------------------

    def record_command(self) -> cmd.Record:
        """The engine's `record` command; empty fields are left to the rig."""
        return cmd.Record(output=self.output_edit.text().strip() or None,
                          name=self.name_edit.text().strip() or None,
                          codec=self.codec_combo.currentText() or None)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text())
        if folder:
            self.output_edit.setText(folder)
            self._output_edited()

    def _output_edited(self) -> None:
        """A new output folder brings its own recordings (focus changes alone do not)."""
        if self._output_folder() != self._scanned:
            self.refresh_recent()

    def _output_folder(self) -> Path | None:
        text = self.output_edit.text().strip()
        return Path(text).expanduser() if text else None

    # --- live figures ------------------------------------------------------------------

    def update_stats(self, cameras: list[dict[str, Any]], spread: dict[str, Any] | None) -> None:
        """Show the figures of one stats event (or of a status answer)."""
        ids = [camera["id"] for camera in cameras]
        if ids != [self._cell(row, 0).text() for row in range(self.table.rowCount())]:
            self._reset_rows(ids)
        for row, camera in enumerate(cameras):
            self._show_camera(row, camera)
        if spread and spread.get("frame_sets"):
            self.spread_label.setText(
                f"Sync spread: p50 {spread['p50_ms']:.2f} ms · p99 {spread['p99_ms']:.2f} ms"
                f" · max {spread['max_ms']:.2f} ms (the last {spread['frame_sets']} frame sets)"
            )
        else:
            self.spread_label.setText("Sync spread: —")

    def _cell(self, row: int, column: int) -> QTableWidgetItem:
        item = self.table.item(row, column)
        assert item is not None  # _reset_rows fills every cell
        return item

    def _reset_rows(self, ids: list[str]) -> None:
        self.table.setRowCount(len(ids))
        for row, camera_id in enumerate(ids):
            self.table.setItem(row, 0, QTableWidgetItem(camera_id))
            for column in range(1, len(COLUMNS)):
                item = QTableWidgetItem()
                if column >= FPS_COLUMN:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, column, item)

    def _show_camera(self, row: int, camera: dict[str, Any]) -> None:
        fps, target = float(camera.get("fps") or 0.0), camera.get("target_fps")
        frames, dropped = int(camera.get("frames") or 0), int(camera.get("dropped") or 0)
        status = str(camera.get("status", ""))
        self._cell(row, 1).setText(status)
        self._cell(row, 1).setToolTip(camera.get("error") or "")
        fps_item = self._cell(row, FPS_COLUMN)
        fps_item.setText(f"{fps:.1f} / {target:g}" if target else f"{fps:.1f}")
        # A paused or stopped camera is slow on purpose: no warning for it.
        _colour(fps_item, fps_colour(fps, target) if status == CameraStatus.RUNNING else None)
        self._cell(row, FRAMES_COLUMN).setText(str(frames))
        dropped_item = self._cell(row, DROPPED_COLUMN)
        dropped_item.setText(str(dropped))
        dropped_item.setToolTip(f"{100 * dropped / max(frames, 1):.2f} % of the frames")
        _colour(dropped_item, dropped_colour(dropped, frames))
        self._cell(row, LAG_COLUMN).setText(str(camera.get("writer_lag") or 0))

    # --- the current recording -----------------------------------------------------------

    def _show_state(self) -> None:
        if self._current is not None:
            state = "Paused" if self._paused else "Recording"
        else:
            state = "Paused (not recording)" if self._paused else "Not recording"
        self.state_label.setText(state)
        self.folder_label.setText(self._current or "—")

    def _on_started(self, event: RecordingStarted) -> None:
        self._current = event.folder
        self._show_state()
        self._show_recording(RecentRecording(Path(event.folder), "recording"))

    def _on_paused(self, paused: bool) -> None:
        self._paused = paused
        self._show_state()

    def _on_engine_gone(self, _reason: str) -> None:
        """No figure outlives the engine that measured it."""
        self._current = None
        self._paused = False
        self._show_state()
        self.state_label.setText("Engine not running")
        for row in range(self.table.rowCount()):
            for column in range(1, len(COLUMNS)):
                self._cell(row, column).setText("—")
                self._cell(row, column).setToolTip("the engine is not running")
                _colour(self._cell(row, column), None)
        self.spread_label.setText("Sync spread: —")

    def _on_stopped(self, event: RecordingStopped) -> None:
        if event.folder == self._current:
            self._current = None
        self._show_state()
        self._on_progress(event.folder, 0.0)

    def _on_assembly_progress(self, event: AssemblyProgress) -> None:
        self._on_progress(event.folder, event.fraction)

    def _on_progress(self, folder: str, fraction: float) -> None:
        self._assembling[folder] = fraction
        self.progress.setFormat(f"Assembling {Path(folder).name}: %p%")
        self.progress.setValue(round(100 * fraction))
        self.progress.show()

    def _on_finalized(self, event: RecordingFinalized) -> None:
        self._assembling.pop(event.folder, None)
        if self._assembling:
            folder, fraction = next(reversed(self._assembling.items()))
            self._on_progress(folder, fraction)
        else:
            self.progress.hide()
        self._show_recording(RecentRecording(
            Path(event.folder), event.status, dict(event.frames or {})
        ))

    # --- recent recordings -----------------------------------------------------------------

    def refresh_recent(self) -> None:
        """Ask the engine for the recordings of the output folder (ones it salvaged after
        a crash included)."""
        self.recent.clear()
        self._scanned = self._output_folder()
        if self._scanned is None:
            return
        found = self.link.command(cmd.Recordings(output=str(self._scanned), limit=RECENT_LIMIT))
        for entry in found or []:
            self.recent.addTopLevelItem(self._item(RecentRecording.from_listing(entry)))

    def recent_recordings(self) -> list[RecentRecording]:
        """The list as shown, newest first."""
        return [self._recent_item(row).data(0, Qt.ItemDataRole.UserRole)
                for row in range(self.recent.topLevelItemCount())]

    def _recent_item(self, row: int) -> QTreeWidgetItem:
        item = self.recent.topLevelItem(row)
        assert item is not None
        return item

    def _show_recording(self, recording: RecentRecording) -> None:
        """Update the recording's row, or put a new one on top."""
        for row in range(self.recent.topLevelItemCount()):
            item = self._recent_item(row)
            if item.data(0, Qt.ItemDataRole.UserRole).folder == recording.folder:
                self._fill(item, recording)
                self._selection_changed()  # a take just finished may be exported now
                return
        self.recent.insertTopLevelItem(0, self._item(recording))
        while self.recent.topLevelItemCount() > RECENT_LIMIT:
            self.recent.takeTopLevelItem(RECENT_LIMIT)

    def _item(self, recording: RecentRecording) -> QTreeWidgetItem:
        item = QTreeWidgetItem()
        self._fill(item, recording)
        return item

    @staticmethod
    def _fill(item: QTreeWidgetItem, recording: RecentRecording) -> None:
        item.setData(0, Qt.ItemDataRole.UserRole, recording)
        item.setText(0, recording.folder.name)
        item.setToolTip(0, str(recording.folder))
        item.setText(1, recording.status)
        item.setText(2, recording.frames_text)
        item.setToolTip(2, recording.frames_detail)

    def selected_recording(self) -> RecentRecording | None:
        items = self.recent.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def _open_selected(self) -> None:
        recording = self.selected_recording()
        if recording is not None:
            self._open_folder(recording.folder)

    # --- exports ---------------------------------------------------------------------------

    def _offer_exports(self, formats: list[str]) -> None:
        self.export_menu.clear()
        for to in formats:
            action = self.export_menu.addAction(format_title(to))
            action.setData(to)
            action.triggered.connect(lambda _checked=False, to=to: self._export_selected(to))
        self._selection_changed()

    def _exportable(self) -> bool:
        """A recording is selected and no longer written (the engine judges the rest)."""
        recording = self.selected_recording()
        return recording is not None and recording.status != "recording"

    def _selection_changed(self) -> None:
        self.open_button.setEnabled(self.selected_recording() is not None)
        self.export_button.setEnabled(self._exportable() and not self.export_menu.isEmpty())

    def _export_selected(self, to: str) -> None:
        recording = self.selected_recording()
        if recording is not None:
            self.exports.start(recording.folder, to)

    def _recent_menu(self, position: QPoint) -> None:
        """A recording's context menu: open its folder, export it."""
        item = self.recent.itemAt(position)
        if item is None:
            return
        self.recent.setCurrentItem(item)
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction("Open folder", self._open_selected)
        exports = menu.addMenu(self.export_menu)
        exports.setEnabled(self.export_button.isEnabled())
        menu.popup(self.recent.viewport().mapToGlobal(position))


def _colour(item: QTableWidgetItem, colour: QColor | None) -> None:
    """Colour the item's text, or give it back the table's normal text colour."""
    item.setData(Qt.ItemDataRole.ForegroundRole, colour)
