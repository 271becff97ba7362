"""The cameras panel and the settings dialog against a real engine with two synthetic cameras."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QDoubleSpinBox,
    QLabel,
    QSpinBox,
)

from engine.specs import MAX_WIDTH, NETWORK_SCHEMES
from engine.wire.events import Stats
from engine.wire.status import CameraStatus
from recorder_gui.cameras_panel import (
    COLUMNS,
    GREY,
    STATUS_COLUMN,
    AddCameraDialog,
    CamerasPanel,
)
from recorder_gui.engine_link import EngineLink
from recorder_gui.settings_dialog import REOPEN_NOTE, SettingsDialog

OUR_WINDOWS = (CamerasPanel, AddCameraDialog, SettingsDialog)


@pytest.fixture
def link(engine, qtbot):
    client = engine.client()
    try:
        yield EngineLink(client)
    finally:
        client.close()


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
    notes = [label for label in dialog.findChildren(QLabel) if label.text() == REOPEN_NOTE]
    assert len(notes) == sum(bool(p["reopen"]) for p in props.values())
    apply = dialog.buttons.button(QDialogButtonBox.StandardButton.Apply)

    brightness.setValue(42)
    assert dialog.changes() == {"brightness": 42}
    qtbot.mouseClick(apply, Qt.MouseButton.LeftButton)
    assert dialog.error_label.text() == ""
    assert dialog.changes() == {}
    with engine.client() as client:
        assert {p["name"]: p["value"] for p in client.properties("left")}["brightness"] == 42

    with engine.client() as client:
        client.record()
        try:
            editors["width"].setValue(320)
            brightness.setValue(-10)
            qtbot.mouseClick(apply, Qt.MouseButton.LeftButton)
            assert "recording" in dialog.error_label.text()
            assert editors["width"].value() == 256  # every editor back to the applied values
            assert brightness.value() == 42
            assert dialog.changes() == {}
        finally:
            client.stop()
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
