"""The rig's cameras: a live table with status badges, and the commands that change the rig.

The table follows the engine's stats events (about once a second) and its status
answer; it never keeps its own idea of a camera's state. Adding, removing, starting
and stopping a camera makes the engine restart its capture group, so those commands
block for a second or two under a busy cursor. Badge colours, accepted URL schemes
and size / fps limits are the engine's (engine.wire.status, engine.specs).

The buttons sit above the table, so however many cameras the table lists (it scrolls
its own rows), they stay in reach. Settings dialogs are not modal: one per camera, and
several may be open while a recording is controlled from the main window.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.specs import MAX_FPS, MAX_HEIGHT, MAX_WIDTH, MIN_SIDE, NETWORK_SCHEMES
from engine.wire.commands import (
    AddCamera,
    Discover,
    RemoveCamera,
    StartCamera,
    Status,
    StopCamera,
)
from engine.wire.events import Stats
from engine.wire.status import CameraStatus
from recorder_gui.engine_link import EngineLink
from recorder_gui.settings_dialog import SettingsDialog, run_command

COLUMNS = ("ID", "Source", "Size @ fps", "Status", "FPS", "Dropped")
STATUS_COLUMN = COLUMNS.index("Status")
GREY = CameraStatus.STOPPED.colour
STARTABLE = {CameraStatus.STOPPED, CameraStatus.FAILED, CameraStatus.CRASHED,
             CameraStatus.STALLED, CameraStatus.RECONNECTING}
# The engine has properties only for cameras whose process delivers frames.
CONFIGURABLE = {status for status in CameraStatus if status.delivering}
URL_PREFIXES = tuple(f"{scheme}://" for scheme in NETWORK_SCHEMES)
NETWORK_HINT_ROLE = Qt.ItemDataRole.UserRole + 1  # a network camera's URL pattern
VIDEO_FILTER = "Videos (*.mp4 *.mkv *.avi *.mov *.webm *.m4v);;All files (*)"


def badge_colour(status: str) -> str:
    """Colour of a status badge; a state this GUI does not know is grey."""
    return CameraStatus.colour_of(status)


def status_tip(camera: dict[str, Any]) -> str:
    """Since when a camera is in its state, how often it was restarted, its last error."""
    lines = []
    if camera.get("since"):
        lines.append(f"{camera.get('status', '?')} since "
                     f"{time.strftime('%H:%M:%S', time.localtime(camera['since']))}")
    if camera.get("restarts"):
        lines.append(f"restarted {camera['restarts']} time(s)")
    if camera.get("error"):
        lines.append(str(camera["error"]))
    return "\n".join(lines)


class BadgeDelegate(QStyledItemDelegate):
    """Paints a status cell as a coloured badge that a row selection does not hide."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        badge = option.rect.adjusted(4, 3, -4, -3)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(index.data(Qt.ItemDataRole.BackgroundRole))
        painter.drawRoundedRect(badge, 4, 4)
        painter.setFont(self._font(option))
        painter.setPen(index.data(Qt.ItemDataRole.ForegroundRole).color())
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, index.data())
        painter.restore()

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        hint = super().sizeHint(option, index)
        text_width = QFontMetrics(self._font(option)).horizontalAdvance(index.data() or "")
        return QSize(max(hint.width(), text_width + 24), hint.height())

    @staticmethod
    def _font(option: QStyleOptionViewItem) -> QFont:
        font = QFont(option.font)
        font.setBold(True)
        return font


class CamerasPanel(QWidget):
    """Table of the rig's cameras with add / remove / start / stop / settings buttons."""

    def __init__(self, link: EngineLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._link = link
        self._cameras: list[dict[str, Any]] = []
        self._stale_before = 0.0  # stats sampled before our last rig change are outdated
        # The camera the red text in the status line is about, and whether it was seen
        # not running since: the text goes once that camera runs (again).
        self._error_camera: str | None = None
        self._error_camera_was_down = False
        self._settings_dialogs: dict[str, SettingsDialog] = {}
        self._add_dialog: AddCameraDialog | None = None

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Source"), QHeaderView.ResizeMode.Stretch)
        self.table.setItemDelegateForColumn(STATUS_COLUMN, BadgeDelegate(self.table))
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.add_button = QPushButton("Add camera…")
        self.remove_button = QPushButton("Remove")
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.settings_button = QPushButton("Settings…")
        self.add_button.clicked.connect(self.add_camera)
        self.remove_button.clicked.connect(lambda: self._change_rig(RemoveCamera, "removed"))
        self.start_button.clicked.connect(lambda: self._change_rig(StartCamera, "started"))
        self.stop_button.clicked.connect(lambda: self._change_rig(StopCamera, "stopped"))
        self.settings_button.clicked.connect(self.open_settings)
        self.status_line = QLabel()
        self.status_line.setWordWrap(True)
        self.status_line.hide()

        buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.start_button,
                       self.stop_button, self.settings_button):
            buttons.addWidget(button)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)  # above the table: in reach however many cameras it lists
        layout.addWidget(self.status_line)
        layout.addWidget(self.table, 1)

        link.stats.connect(self._on_stats)
        self._update_buttons()
        self.refresh()

    # --- the table ----------------------------------------------------------------------

    def refresh(self) -> None:
        """Ask the engine for the current cameras now, rather than wait for the next stats.
        A status read is quick: no wait cursor (setting one from inside a dialog's accept,
        as after an add, crashed Qt now and then while it applied it to every window)."""
        status, reason = self._link.try_command(Status())
        if status is None:
            self._report(reason, error=True)
        else:
            self._show(status.get("cameras", []))

    def reload(self) -> None:
        """Read everything again from the engine (a restarted one, say): the cameras, and
        the properties in each open settings dialog."""
        self._stale_before = 0.0
        self._report("")
        self.refresh()
        for dialog in list(self._settings_dialogs.values()):
            dialog.reload()

    def _on_stats(self, event: Stats) -> None:
        if event.time >= self._stale_before:
            self._show(event.cameras)

    def _show(self, cameras: list[dict[str, Any]]) -> None:
        selected = self.selected_camera()
        self._cameras = cameras
        self.table.setRowCount(len(cameras))
        for row, camera in enumerate(cameras):
            status = str(camera.get("status") or "unknown")
            fps = camera.get("target_fps")
            cells = (
                camera.get("id", "?"),
                camera.get("source", ""),
                f"{camera.get('size', '?')} @ {fps:g}" if fps else camera.get("size", "?"),
                status.upper() + (f" ×{camera['restarts']}" if camera.get("restarts") else ""),
                f"{camera.get('fps') or 0.0:.1f}",
                str(camera.get("dropped") or 0),
            )
            tip = status_tip(camera)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                item.setToolTip(tip)
                if column == STATUS_COLUMN:
                    item.setBackground(QBrush(QColor(badge_colour(status))))
                    item.setForeground(QBrush(QColor("white")))
                self.table.setItem(row, column, item)
        ids = [camera.get("id") for camera in cameras]
        if selected in ids:
            self.table.selectRow(ids.index(selected))
        else:
            self.table.clearSelection()
        self._update_buttons()
        self._forget_recovered_error()

    def _forget_recovered_error(self) -> None:
        """Clear a camera's red text once it runs again (or is gone)."""
        if self._error_camera is None:
            return
        status = next((str(c.get("status", "")).lower() for c in self._cameras
                       if c.get("id") == self._error_camera), None)
        if status != CameraStatus.RUNNING:
            self._error_camera_was_down = True
        if status is None or (status == CameraStatus.RUNNING and self._error_camera_was_down):
            self._report("")

    def selected_camera(self) -> str | None:
        """Id of the selected camera, or None."""
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._cameras):
            return None
        return self._cameras[rows[0].row()].get("id")

    def _selected_status(self) -> str | None:
        camera_id = self.selected_camera()
        return next((str(c.get("status", "")).lower() for c in self._cameras
                     if c.get("id") == camera_id), None)

    def _update_buttons(self) -> None:
        status = self._selected_status()
        self.remove_button.setEnabled(status is not None)
        self.start_button.setEnabled(status in STARTABLE)
        self.stop_button.setEnabled(status is not None and status != CameraStatus.STOPPED)
        self.settings_button.setEnabled(status in CONFIGURABLE)

    def _report(self, text: str, error: bool = False, camera: str | None = None) -> None:
        """Say how a command went; an error about a camera stays until it runs again."""
        self.status_line.setStyleSheet("color: #c62828;" if error else "")
        self.status_line.setText(text)
        self.status_line.setVisible(bool(text))
        self._error_camera = camera if error else None
        self._error_camera_was_down = False
        if camera is not None:
            self._forget_recovered_error()

    # --- commands -----------------------------------------------------------------------

    def _change_rig(self, command: type[RemoveCamera | StartCamera | StopCamera],
                    done: str) -> None:
        camera_id = self.selected_camera()
        if camera_id is None:
            return
        result, reason = run_command(self._link, command(camera=camera_id))
        self._rig_changed(f"{camera_id} {done}" if result is not None else reason,
                          error=result is None, camera=camera_id)

    def _rig_changed(self, message: str, error: bool = False,
                     camera: str | None = None) -> None:
        """After a structural command: say how it went and show the engine's new state."""
        self._stale_before = time.time()
        self._report(message, error, camera)
        self.refresh()

    def add_camera(self) -> None:
        """Open the add-camera dialog (not modal; again: the one open is raised); it runs
        the command itself and reports back here."""
        if self._add_dialog is not None:
            _bring_up(self._add_dialog)
            return
        dialog = AddCameraDialog(self._link, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.added.connect(lambda camera_id: self._rig_changed(f"{camera_id} added"))
        dialog.destroyed.connect(lambda _obj=None: setattr(self, "_add_dialog", None))
        self._add_dialog = dialog
        dialog.show()

    def open_settings(self, camera_id: str | None = None) -> SettingsDialog | None:
        """Open the settings of a camera (default: the selected one), not modal; a camera
        whose dialog is open already gets it raised, not a second one."""
        camera_id = camera_id or self.selected_camera()
        if camera_id is None:
            return None
        dialog = self._settings_dialogs.get(camera_id)
        if dialog is None:
            dialog = SettingsDialog(self._link, camera_id, self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.destroyed.connect(
                lambda _obj=None, key=camera_id: self._settings_dialogs.pop(key, None))
            self._settings_dialogs[camera_id] = dialog
        _bring_up(dialog)
        return dialog

    def settings_dialogs(self) -> dict[str, SettingsDialog]:
        """The settings dialogs open now, by camera."""
        return dict(self._settings_dialogs)


def _bring_up(dialog: QDialog) -> None:
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()


class AddCameraDialog(QDialog):
    """Choose a source (detected, network URL or video file) and optional id, size and fps.

    OK runs add_camera; on refusal the dialog stays open with the reason, so nothing
    typed is lost.
    """

    added = Signal(str)  # the new camera's id

    def __init__(self, link: EngineLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._link = link
        self.setWindowTitle("Add camera")

        self.detected_choice = QRadioButton("Detected")
        self.url_choice = QRadioButton("Network URL")
        self.file_choice = QRadioButton("Video file")
        self._kinds = QButtonGroup(self)
        for choice in (self.detected_choice, self.url_choice, self.file_choice):
            self._kinds.addButton(choice)
        self.detected_choice.setChecked(True)

        self.devices = QListWidget()
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText(
            f"rtsp://user:password@host/stream  ({', '.join(URL_PREFIXES)})")
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("/path/to/video.mp4")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.devices.itemClicked.connect(self._picked)
        self.url_edit.textEdited.connect(lambda _text: self.url_choice.setChecked(True))
        self.file_edit.textEdited.connect(lambda _text: self.file_choice.setChecked(True))

        self.id_edit = QLineEdit()
        self.id_edit.setPlaceholderText("automatic")
        self.width_edit = self._optional(QSpinBox(), MIN_SIDE, MAX_WIDTH)
        self.height_edit = self._optional(QSpinBox(), MIN_SIDE, MAX_HEIGHT)
        self.fps_edit = self._optional(QDoubleSpinBox(), 1, int(MAX_FPS))
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #c62828;")
        self.error_label.setWordWrap(True)

        sources = QGridLayout()
        sources.addWidget(self.detected_choice, 0, 0, Qt.AlignmentFlag.AlignTop)
        sources.addWidget(self.devices, 0, 1, 1, 2)
        sources.addWidget(self.url_choice, 1, 0)
        sources.addWidget(self.url_edit, 1, 1, 1, 2)
        sources.addWidget(self.file_choice, 2, 0)
        sources.addWidget(self.file_edit, 2, 1)
        sources.addWidget(browse, 2, 2)
        options = QFormLayout()
        options.addRow("Id", self.id_edit)
        options.addRow("Width (px)", self.width_edit)
        options.addRow("Height (px)", self.height_edit)
        options.addRow("Frame rate (fps)", self.fps_edit)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(sources)
        layout.addLayout(options)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

        self._list_devices()

    @staticmethod
    def _optional(
        editor: QSpinBox | QDoubleSpinBox, low: int, high: int
    ) -> QSpinBox | QDoubleSpinBox:
        """A spin box whose lowest value (just below the valid range) reads "default"."""
        editor.setRange(low - 1, high)
        editor.setSpecialValueText("default")
        editor.setToolTip(f"{low}–{high}; \"default\" lets the engine choose")
        return editor

    def _list_devices(self) -> None:
        found, reason = run_command(self._link, Discover())
        for entry in found or []:
            text = f"{entry['source']} — {entry.get('description', entry.get('kind', ''))}"
            if entry.get("width") and entry.get("height"):
                text += f" ({entry['width']}x{entry['height']} @ {entry.get('fps') or 0:g})"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, entry["source"])
            item.setData(NETWORK_HINT_ROLE, entry.get("hint") if entry.get("kind") == "network"
                         else None)
            self.devices.addItem(item)
        if self.devices.count():
            self.devices.setCurrentRow(0)
        if found is None:
            self.error_label.setText(reason)

    def _picked(self, item: QListWidgetItem) -> None:
        """A camera found on the network is only a start of its URL (the stream path and
        the password are the user's to add): it goes into the URL field to complete."""
        hint = item.data(NETWORK_HINT_ROLE)
        if not hint:
            self.detected_choice.setChecked(True)
            return
        self.url_edit.setText(item.data(Qt.ItemDataRole.UserRole))
        self.url_edit.setToolTip(f"complete it, e.g. {hint}")
        self.url_choice.setChecked(True)
        self.url_edit.setFocus()

    def _browse(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Video file", "", VIDEO_FILTER)
        if path:
            self.file_edit.setText(path)
            self.file_choice.setChecked(True)

    def source(self) -> str:
        """The chosen source string, or "" when none is chosen."""
        if self.url_choice.isChecked():
            return self.url_edit.text().strip()
        if self.file_choice.isChecked():
            return self.file_edit.text().strip()
        item = self.devices.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else ""

    def options(self) -> dict[str, Any]:
        """The add_camera arguments; values left at default are omitted."""
        options: dict[str, Any] = {"source": self.source()}
        if self.id_edit.text().strip():
            options["id"] = self.id_edit.text().strip()
        for name, editor in (("width", self.width_edit), ("height", self.height_edit),
                             ("fps", self.fps_edit)):
            if editor.value() != editor.minimum():
                options[name] = editor.value()
        return options

    def accept(self) -> None:
        """Add the camera; close only when the engine took it."""
        options = self.options()
        if not options["source"]:
            self.error_label.setText("choose a source")
            return
        if self.url_choice.isChecked() and not options["source"].lower().startswith(
            URL_PREFIXES
        ):
            self.error_label.setText(
                f"a network camera URL starts with {', '.join(URL_PREFIXES)}")
            return
        result, reason = run_command(self._link, AddCamera(**options))
        if result is None:
            self.error_label.setText(reason)
            return
        self.added.emit(result["id"])
        super().accept()
