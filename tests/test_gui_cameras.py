"""The cameras panel and the settings dialog against a real engine with two synthetic cameras."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QLabel,
    QListWidgetItem,
    QScrollArea,
    QSpinBox,
)

from engine.specs import MAX_WIDTH, NETWORK_SCHEMES
from engine.wire.commands import Set
from engine.wire.events import Stats
from engine.wire.status import CameraStatus
from recorder_gui.cameras_panel import (
    COLUMNS,
    GREY,
    NETWORK_HINT_ROLE,
    STATUS_COLUMN,
    AddCameraDialog,
    CamerasPanel,
)
from recorder_gui.engine_link import EngineLink
from recorder_gui.settings_dialog import (
    CUSTOM_MODE,
    READ_ONLY_NOTE,
    RECORDING_NOTE,
    RESTART_NOTE,
    SettingsDialog,
    describe_setting,
    plain_refusal,
    setting_label,
)
from tests.conftest import free_port

OUR_WINDOWS = (CamerasPanel, AddCameraDialog, SettingsDialog)


@pytest.fixture(autouse=True)
def no_leftover_windows(qtbot):
    """Every dialog a test opens must be closed by it."""
    yield
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    leftovers = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, OUR_WINDOWS) and w.isVisible()]
    assert not leftovers, f"windows left open: {leftovers}"


def make_panel(link: EngineLink, qtbot) -> CamerasPanel:
    panel = CamerasPanel(link)
    qtbot.addWidget(panel)
    return panel


def cell(panel: CamerasPanel, camera_id: str, column: str) -> str:
    return panel.table.item(row_of(panel, camera_id), COLUMNS.index(column)).text()


def row_of(panel: CamerasPanel, camera_id: str) -> int:
    ids = [panel.table.item(row, 0).text() for row in range(panel.table.rowCount())]
    return ids.index(camera_id)


def badges(panel: CamerasPanel) -> dict[str, str]:
    table = panel.table
    return {table.item(row, 0).text(): table.item(row, STATUS_COLUMN).text()
            for row in range(table.rowCount())}


def engine_status(engine, camera_id: str) -> str:
    with engine.client() as client:
        cameras = client.status()["cameras"]
    return next(c["status"] for c in cameras if c["id"] == camera_id)


def wait_stats(qtbot, link: EngineLink, count: int = 1) -> None:
    for _ in range(count):
        with qtbot.waitSignal(link.stats, timeout=10_000):
            pass


@pytest.mark.timeout(120)
def test_panel_lists_cameras_with_running_badges(link, qtbot):
    panel = make_panel(link, qtbot)
    wait_stats(qtbot, link)
    qtbot.waitUntil(lambda: badges(panel) == {"left": "RUNNING", "right": "RUNNING"},
                    timeout=10_000)
    qtbot.waitUntil(lambda: float(cell(panel, "left", "FPS")) > 0, timeout=10_000)
    assert cell(panel, "left", "Source") == "synthetic"
    assert cell(panel, "left", "Size @ fps") == "256x192 @ 30"
    badge = panel.table.item(row_of(panel, "left"), STATUS_COLUMN)
    assert badge.background().color().name() == CameraStatus.RUNNING.colour
    assert not panel.remove_button.isEnabled()  # nothing selected yet
    assert not panel.settings_button.isEnabled()


@pytest.mark.timeout(120)
def test_supervisor_states_show_as_badges_with_restarts_and_since(link, qtbot):
    panel = make_panel(link, qtbot)
    since = time.time() - 12
    # Emitted on this thread, so handled at once, before any real stats can be delivered.
    link.stats.emit(Stats(cameras=[
        {"id": "a", "source": "synthetic", "status": "crashed", "error": "device unplugged",
         "since": since, "restarts": 3, "fps": 0.0, "dropped": 0, "size": "640x480",
         "target_fps": 30.0},
        {"id": "b", "source": "synthetic", "status": "warming", "error": None,
         "fps": 0.0, "dropped": 0, "size": "640x480", "target_fps": 30.0},
    ], spread=None, paused=False))
    assert badges(panel) == {"a": "CRASHED ×3", "b": "WARMING"}
    crashed = panel.table.item(row_of(panel, "a"), STATUS_COLUMN)
    assert crashed.background().color().name() == CameraStatus.CRASHED.colour
    tip = panel.table.item(row_of(panel, "a"), 0).toolTip()
    assert time.strftime("%H:%M:%S", time.localtime(since)) in tip
    assert "restarted 3 time(s)" in tip and "device unplugged" in tip
    unknown = panel.table.item(row_of(panel, "b"), STATUS_COLUMN)
    assert unknown.background().color().name() == GREY
    panel.table.selectRow(row_of(panel, "a"))
    assert panel.start_button.isEnabled() and not panel.settings_button.isEnabled()


@pytest.mark.timeout(120)
def test_stop_and_start_a_camera_through_the_buttons(engine, link, qtbot):
    panel = make_panel(link, qtbot)
    panel.table.selectRow(row_of(panel, "left"))
    assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()

    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert badges(panel)["left"] == "STOPPED"
    assert engine_status(engine, "left") == "stopped"
    wait_stats(qtbot, link, 2)  # stats sampled before the stop must not flip it back
    assert badges(panel) == {"left": "STOPPED", "right": "RUNNING"}
    assert panel.selected_camera() == "left"
    assert panel.start_button.isEnabled() and not panel.settings_button.isEnabled()

    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert badges(panel)["left"] == "RUNNING"
    assert engine_status(engine, "left") == "running"
    assert panel.status_line.text() == "left started"


@pytest.mark.timeout(120)
def test_add_and_remove_a_camera(engine, link, qtbot):
    panel = make_panel(link, qtbot)
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    dialog = panel.findChild(AddCameraDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.source() == "synthetic"  # first in the discovered list
    dialog.id_edit.setText("extra")
    dialog.width_edit.setValue(320)
    dialog.height_edit.setValue(240)
    assert dialog.options() == {"source": "synthetic", "id": "extra", "width": 320,
                                "height": 240}  # fps left at default: omitted
    dialog.accept()
    assert not dialog.isVisible()
    assert panel.table.rowCount() == 3
    assert badges(panel)["extra"] == "RUNNING"
    assert cell(panel, "extra", "Size @ fps") == "320x240 @ 30"

    panel.table.selectRow(row_of(panel, "extra"))
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert sorted(badges(panel)) == ["left", "right"]
    assert panel.selected_camera() is None and not panel.remove_button.isEnabled()
    with engine.client() as client:
        assert [c["id"] for c in client.status()["cameras"]] == ["left", "right"]


@pytest.mark.timeout(120)
def test_add_camera_refusal_keeps_the_dialog_open(link, qtbot):
    panel = make_panel(link, qtbot)
    dialog = AddCameraDialog(link, panel)
    dialog.show()
    dialog.id_edit.setText("left")  # already in the rig
    dialog.accept()
    assert dialog.isVisible()
    assert "already in the rig" in dialog.error_label.text()
    dialog.url_choice.setChecked(True)
    dialog.url_edit.setText("ftp://camera")
    dialog.accept()
    assert "rtsp://" in dialog.error_label.text()
    dialog.close()
    assert panel.table.rowCount() == 2


@pytest.mark.timeout(120)
def test_the_dialog_takes_every_url_scheme_the_engine_takes(link, qtbot):
    """rtsps:// was refused here while the engine accepted it: the schemes are the engine's."""
    panel = make_panel(link, qtbot)
    dialog = AddCameraDialog(link, panel)
    dialog.show()
    dialog.url_choice.setChecked(True)
    dialog.width_edit.setValue(dialog.width_edit.maximum())
    assert dialog.width_edit.maximum() == MAX_WIDTH
    for scheme in NETWORK_SCHEMES:
        dialog.url_edit.setText(f"{scheme}://camera.invalid/stream")
        dialog.id_edit.setText("left")  # refused by the engine, after the scheme check
        dialog.accept()
        assert "already in the rig" in dialog.error_label.text(), scheme
    dialog.close()


@pytest.mark.timeout(120)
def test_settings_dialog_edits_apply_and_revert(engine, link, qtbot):
    with engine.client() as client:
        props = {p["name"]: p for p in client.properties("left")}
    dialog = SettingsDialog(link, "left")
    qtbot.addWidget(dialog)
    dialog.show()
    editors = dialog.editors
    assert set(editors) == set(props)
    brightness = editors["brightness"]
    assert isinstance(brightness, QSpinBox)
    assert (brightness.minimum(), brightness.maximum()) == (
        props["brightness"]["minimum"], props["brightness"]["maximum"])
    assert isinstance(editors["pattern"], QComboBox)
    assert [editors["pattern"].itemText(i) for i in range(editors["pattern"].count())] == list(
        props["pattern"]["choices"])
    assert isinstance(editors["paced"], QCheckBox) and editors["paced"].isChecked()
    assert isinstance(editors["exposure"], QDoubleSpinBox)
    assert editors["width"].value() == 256
    restarting = {name for name, row in dialog.rows.items() if row.note.text() == RESTART_NOTE}
    assert restarting == {name for name, p in props.items() if p["reopen"]} - {
        "width", "height", "fps"}  # those the mode picker's note covers
    assert dialog.mode_row.note.text() == RESTART_NOTE
    apply = dialog.buttons.button(QDialogButtonBox.StandardButton.Apply)

    brightness.setValue(42)
    assert dialog.changes() == {"brightness": 42}
    qtbot.mouseClick(apply, Qt.MouseButton.LeftButton)
    assert dialog.refusal() == ""
    assert dialog.changes() == {}
    assert engine_values(engine, "left")["brightness"] == 42

    editors["width"].setValue(1281)  # refused by the engine: every editor goes back
    brightness.setValue(-10)
    qtbot.mouseClick(apply, Qt.MouseButton.LeftButton)
    assert editors["width"].value() == 256
    assert brightness.value() == 42
    assert dialog.changes() == {}
    dialog.close()


def engine_values(engine, camera_id: str) -> dict:
    with engine.client() as client:
        return {p["name"]: p["value"] for p in client.properties(camera_id)}


def form_labels(dialog: SettingsDialog) -> dict[str, QLabel]:
    """The label of each setting's row, by the engine's name."""
    form = dialog.findChild(QFormLayout)
    labels = {}
    for name, editor in dialog.editors.items():
        field = editor
        while form.labelForField(field) is None:  # the editor, or the row holding it
            field = field.parentWidget()
        labels[name] = form.labelForField(field)
    return labels


@pytest.mark.timeout(120)
def test_settings_read_as_words_with_units_and_keep_the_engines_names_in_tooltips(link, qtbot):
    dialog = SettingsDialog(link, "left")
    qtbot.addWidget(dialog)
    dialog.show()
    labels = {name: label.text() for name, label in form_labels(dialog).items()}
    assert labels["fps"] == "Frame rate (fps)"
    assert labels["width"] == "Width (px)" and labels["height"] == "Height (px)"
    assert labels["paced"] == "Paced to the frame rate"
    assert labels["pattern"] == "Test pattern" and labels["exposure"] == "Exposure"
    assert not {"fps", "width", "paced"} & set(labels.values())  # no raw engine names
    for name, label in form_labels(dialog).items():
        assert f"Engine setting: {name}" in label.toolTip()
        assert f"Engine setting: {name}" in dialog.editors[name].toolTip()
    # A setting no table knows is spelled out, its unit taken from the name.
    assert describe_setting("settle_time_ms")[:2] == ("Settle time", "ms")
    assert setting_label("white_balance") == "White balance"
    dialog.close()


@pytest.mark.timeout(120)
def test_the_size_and_rate_are_picked_from_the_cameras_modes(engine, link, qtbot):
    """The synthetic camera lists its modes: picking one sets size and rate together; it
    takes any even size too, so "Custom…" shows the boxes (it runs 256x192, not listed)."""
    dialog = SettingsDialog(link, "left")
    qtbot.addWidget(dialog)
    dialog.show()
    modes = dialog.mode_editor
    texts = [modes.itemText(i) for i in range(modes.count())]
    assert "640 × 480 at 30 fps" in texts and "1280 × 720 at 30 fps" in texts
    assert texts[-1] == CUSTOM_MODE and modes.currentText() == CUSTOM_MODE
    assert dialog.rows["width"].isVisibleTo(dialog)  # custom: the boxes are shown

    index = texts.index("640 × 480 at 30 fps")
    modes.setCurrentIndex(index)
    modes.activated.emit(index)
    assert not dialog.rows["width"].isVisibleTo(dialog)
    assert dialog.changes() == {"width": 640, "height": 480}
    assert dialog.apply()
    values = engine_values(engine, "left")
    assert (values["width"], values["height"], values["fps"]) == (640, 480, 30.0)
    assert modes.currentText() == "640 × 480 at 30 fps" and dialog.changes() == {}
    dialog.close()


@pytest.mark.timeout(120)
def test_a_network_camera_shows_its_streams_one_mode(engine, link, qtbot, mjpeg_server):
    with engine.client() as client:
        client.add_camera(mjpeg_server.start(free_port()), id="net")
    dialog = SettingsDialog(link, "net")
    qtbot.addWidget(dialog)
    dialog.show()
    modes = dialog.mode_editor
    assert modes.count() == 1 and modes.currentText().startswith("320 × 240 at ")
    assert not modes.isEnabled()  # the stream's own: no Custom…, nothing to choose
    assert dialog.mode_row.note.text() == READ_ONLY_NOTE
    assert not dialog.rows["width"].isVisibleTo(dialog)
    assert form_labels(dialog)["read_timeout_ms"].text() == "Read timeout (ms)"
    dialog.close()


@pytest.mark.timeout(120)
def test_a_refusal_reads_as_a_sentence_next_to_the_refused_setting(link, qtbot):
    dialog = SettingsDialog(link, "left")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.editors["width"].setValue(1281)
    assert not dialog.apply()
    shown = [label.text() for label in dialog.findChildren(QLabel) if label.isVisibleTo(dialog)]
    assert "Width must be an even number (1281 is not)." in shown
    assert dialog.refusal("width") == "Width must be an even number (1281 is not)."
    assert dialog.rows["width"].error.isVisibleTo(dialog)
    assert dialog.refusal() == ""  # not below the form: next to the width

    dialog.editors["fps"].setValue(0.5)  # under the minimum the engine takes
    dialog.editors["fps"].setMinimum(0.1)
    dialog.editors["fps"].setValue(0.5)
    assert not dialog.apply()
    assert dialog.refusal("width") == ""  # the earlier refusal went
    assert dialog.refusal("fps") == "Frame rate must be at least 1 fps (0.5 is too small)."
    dialog.close()

    assert plain_refusal("set: cam0: width must be a multiple of 2, got 1281", "cam0") == (
        "width", "Width must be an even number (1281 is not).")
    assert plain_refusal("set: cam0: brightness must be <= 100, got 500", "cam0") == (
        "brightness", "Brightness must be at most 100 (500 is too large).")
    assert plain_refusal("set: cam0: pattern must be one of gradient, bars, got 'x'",
                         "cam0")[1] == "Test pattern must be one of: gradient, bars."
    assert plain_refusal("set: the engine is not running", "cam0") == (
        None, "The engine is not running.")


@pytest.mark.timeout(120)
def test_restarting_settings_are_locked_during_a_recording_saying_why(engine, link, qtbot):
    dialog = SettingsDialog(link, "left")
    qtbot.addWidget(dialog)
    dialog.show()
    restarting = [dialog.editors["width"], dialog.editors["fps"]]
    assert all(editor.isEnabled() for editor in restarting)
    with engine.client() as client:
        client.record()
        try:
            qtbot.waitUntil(lambda: not dialog.editors["width"].isEnabled(), timeout=10_000)
            restarting.append(dialog.mode_editor)
            assert not any(editor.isEnabled() for editor in restarting)
            assert dialog.mode_row.note.text() == RECORDING_NOTE
            assert "Stop the recording to change this" in dialog.mode_editor.toolTip()
            assert "Stop the recording to change this" in dialog.editors["width"].toolTip()
            assert dialog.recording_label.isVisibleTo(dialog)
            # What does not restart the camera still changes, mid-recording.
            assert dialog.editors["brightness"].isEnabled()
            dialog.editors["brightness"].setValue(7)
            assert dialog.changes() == {"brightness": 7}
            assert dialog.apply()
            assert engine_values(engine, "left")["brightness"] == 7

            # A dialog opened during the recording starts locked.
            late = SettingsDialog(link, "right")
            qtbot.addWidget(late)
            assert not late.mode_editor.isEnabled() and late.recording
            late.close()
        finally:
            client.stop()
    qtbot.waitUntil(lambda: dialog.editors["width"].isEnabled(), timeout=10_000)
    assert all(editor.isEnabled() for editor in restarting)
    assert dialog.mode_row.note.text() == RESTART_NOTE
    assert "Stop the recording" not in dialog.editors["width"].toolTip()
    assert not dialog.recording_label.isVisibleTo(dialog)
    dialog.close()


@pytest.mark.timeout(120)
def test_reset_to_defaults_shows_each_settings_default(engine, link, qtbot):
    with engine.client() as client:
        client.call(Set(camera="left", changes={"brightness": 30, "pattern": "bars"}))
        defaults = {p["name"]: p["default"] for p in client.properties("left")}
    dialog = SettingsDialog(link, "left")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.editors["brightness"].value() == 30
    qtbot.mouseClick(dialog.reset_button, Qt.MouseButton.LeftButton)
    assert dialog.reset_button.text() == "Reset to defaults"
    assert dialog.changes() == {"brightness": defaults["brightness"],
                                "pattern": defaults["pattern"],
                                "width": defaults["width"], "height": defaults["height"]}
    assert dialog.mode_editor.currentText() == "640 × 480 at 30 fps"
    assert dialog.apply()
    values = engine_values(engine, "left")
    assert (values["brightness"], values["pattern"], values["width"]) == (0, "gradient", 640)
    dialog.close()


@pytest.mark.timeout(120)
def test_settings_button_opens_the_dialog_of_the_selected_camera(link, qtbot):
    panel = make_panel(link, qtbot)
    panel.table.selectRow(row_of(panel, "right"))
    qtbot.mouseClick(panel.settings_button, Qt.MouseButton.LeftButton)
    dialog = panel.findChild(SettingsDialog)
    assert dialog is not None and dialog.isVisible() and dialog.camera_id == "right"
    assert "brightness" in dialog.editors
    dialog.buttons.button(QDialogButtonBox.StandardButton.Close).click()
    assert not dialog.isVisible()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert panel.findChild(SettingsDialog) is None  # deleted on close


@pytest.mark.timeout(120)
def test_settings_dialogs_are_not_modal_one_per_camera(link, qtbot):
    """Several cameras' dialogs open at once, none blocks the main window (Record and
    Stop stay live); asking again for an open one raises it instead of a second."""
    panel = make_panel(link, qtbot)
    panel.table.selectRow(row_of(panel, "left"))
    qtbot.mouseClick(panel.settings_button, Qt.MouseButton.LeftButton)
    panel.table.selectRow(row_of(panel, "right"))
    qtbot.mouseClick(panel.settings_button, Qt.MouseButton.LeftButton)
    dialogs = panel.findChildren(SettingsDialog)
    assert sorted(d.camera_id for d in dialogs) == ["left", "right"]
    assert all(d.isVisible() and not d.isModal() for d in dialogs)
    assert all(d.windowModality() == Qt.WindowModality.NonModal for d in dialogs)
    assert QApplication.activeModalWidget() is None

    panel.table.selectRow(row_of(panel, "left"))
    qtbot.mouseClick(panel.settings_button, Qt.MouseButton.LeftButton)
    assert len(panel.findChildren(SettingsDialog)) == 2
    assert panel.settings_dialogs()["left"] in dialogs
    for dialog in dialogs:
        dialog.close()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert panel.settings_dialogs() == {}


def five_cameras() -> Stats:
    return Stats(cameras=[
        {"id": f"cam{i}", "source": "synthetic", "status": "running", "fps": 30.0,
         "dropped": 0, "size": "640x480", "target_fps": 30.0} for i in range(5)
    ], spread=None, paused=False)


@pytest.mark.timeout(120)
def test_the_panels_buttons_stay_in_reach_with_five_cameras(link, qtbot):
    """In its dock the panel sits in a scroll area; a short dock must not put the
    buttons below the fold: the table scrolls its own rows instead."""
    panel = make_panel(link, qtbot)
    scroll = QScrollArea()  # as the main window docks it
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(panel)
    qtbot.addWidget(scroll)
    scroll.resize(700, 90)  # shorter than the panel: the scroll area scrolls it
    scroll.show()
    link.stats.emit(five_cameras())
    qtbot.waitExposed(scroll)
    assert panel.table.rowCount() == 5
    view = scroll.viewport().rect()
    for button in (panel.add_button, panel.remove_button, panel.start_button,
                   panel.stop_button, panel.settings_button):
        corners = (button.mapTo(scroll.viewport(), button.rect().topLeft()),
                   button.mapTo(scroll.viewport(), button.rect().bottomRight()))
        assert all(view.contains(corner) for corner in corners), button.text()
    assert panel.table.verticalScrollBar().maximum() > 0  # the rows scroll in the table


@pytest.mark.timeout(120)
def test_reload_reads_the_engine_again(engine, link, qtbot):
    panel = make_panel(link, qtbot)
    link.stats.emit(five_cameras())  # what the panel showed of another engine, say
    dialog = panel.open_settings("left")
    dialog.editors["brightness"].setValue(55)  # not applied
    with engine.client() as client:
        client.call(Set(camera="left", changes={"brightness": 12}))
    panel.reload()
    assert sorted(badges(panel)) == ["left", "right"]
    assert panel.settings_dialogs()["left"] is dialog
    assert dialog.editors["brightness"].value() == 12 and dialog.changes() == {}
    dialog.close()


def write_video(path) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15, (320, 240))
    for index in range(30):
        writer.write(np.full((240, 320, 3), index * 8, np.uint8))
    writer.release()


@pytest.mark.timeout(180)
def test_a_cameras_error_goes_once_it_runs_again(engine, link, qtbot, tmp_path):
    """The start of a file camera whose file went is refused (red); once the file is
    back, the supervisor starts the camera and its old error leaves the panel."""
    video = tmp_path / "clip.avi"
    write_video(video)
    with engine.client() as client:
        client.add_camera(str(video), id="clip")
    panel = make_panel(link, qtbot)
    panel.table.selectRow(row_of(panel, "clip"))
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    # "STOPPED ×1" when the supervisor restarted the file camera once (a loaded machine)
    assert badges(panel)["clip"].startswith("STOPPED")
    video.rename(tmp_path / "away.avi")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert "video file not found" in panel.status_line.text()
    assert "c62828" in panel.status_line.styleSheet() and panel.status_line.isVisibleTo(panel)
    error = panel.status_line.text()

    link.stats.emit(Stats(cameras=[  # another camera's news does not clear it
        {"id": "left", "source": "synthetic", "status": "running"},
        {"id": "clip", "source": str(video), "status": "failed"}], spread=None, paused=False))
    assert panel.status_line.text() == error
    (tmp_path / "away.avi").rename(video)
    qtbot.waitUntil(lambda: badges(panel).get("clip", "").startswith("RUNNING"),
                    timeout=60_000)  # "RUNNING ×1": the supervisor restarted it
    assert panel.status_line.text() == ""
    assert not panel.status_line.isVisibleTo(panel)


def test_a_network_camera_found_goes_into_the_url_field_to_complete(link, qtbot):
    """An ONVIF camera's entry is only rtsp://HOST/: picking it puts that into the URL
    field (with the pattern to complete) instead of adding it as it is."""
    panel = make_panel(link, qtbot)
    dialog = AddCameraDialog(link, panel)
    dialog.show()
    hint = "rtsp://USER:PASSWORD@192.0.2.7:554/PATH"
    item = QListWidgetItem("rtsp://192.0.2.7/ — ONVIF camera")
    item.setData(Qt.ItemDataRole.UserRole, "rtsp://192.0.2.7/")
    item.setData(NETWORK_HINT_ROLE, hint)
    dialog.devices.addItem(item)
    dialog.devices.setCurrentItem(item)
    qtbot.mouseClick(dialog.devices.viewport(), Qt.MouseButton.LeftButton,
                     pos=dialog.devices.visualItemRect(item).center())
    assert dialog.url_choice.isChecked()
    assert dialog.url_edit.text() == "rtsp://192.0.2.7/"
    assert hint in dialog.url_edit.toolTip()
    assert dialog.source() == "rtsp://192.0.2.7/"
    dialog.close()
