"""The recording and health panels against a real engine with two synthetic cameras."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from engine.wire.commands import Record, Set, Stop
from engine.wire.events import CameraLost, SensorError
from recorder_gui.engine_link import EngineLink
from recorder_gui.health_panel import HealthPanel
from recorder_gui.recording_panel import (
    ALARM,
    DROPPED_COLUMN,
    FPS_COLUMN,
    FRAMES_COLUMN,
    WARNING,
    RecordingPanel,
)

pytestmark = pytest.mark.usefixtures("no_leaked_widgets")


def recording_panel(qtbot, link: EngineLink, opened: list[Path]) -> RecordingPanel:
    panel = RecordingPanel(link, open_folder=opened.append)
    qtbot.addWidget(panel)
    return panel


def cell(panel: RecordingPanel, row: int, column: int) -> str:
    return panel.table.item(row, column).text()


def cell_colour(panel: RecordingPanel, row: int, column: int) -> QColor | None:
    return panel.table.item(row, column).data(Qt.ItemDataRole.ForegroundRole)


def record_briefly(link: EngineLink, name: str) -> Path:
    result = link.command(Record(name=name))
    assert result is not None
    time.sleep(0.5)
    assert link.command(Stop()) is not None
    return Path(result["folder"])


@pytest.mark.timeout(120)
def test_recording_panel_records_and_lists_the_recording(qtbot, engine, link):
    opened: list[Path] = []
    panel = recording_panel(qtbot, link, opened)
    assert panel.output_edit.text() == str(engine.output)
    assert panel.codec_combo.currentText() == "mjpeg"
    assert panel.state_label.text() == "Not recording"

    qtbot.waitUntil(lambda: panel.table.rowCount() == 2 and int(cell(panel, 1, FRAMES_COLUMN)) > 0,
                    timeout=10_000)
    assert [cell(panel, row, 0) for row in range(2)] == ["left", "right"]
    qtbot.waitUntil(lambda: panel.spread_label.text().startswith("Sync spread: p50"),
                    timeout=10_000)

    panel.name_edit.setText(" take-one ")
    command = panel.record_command()
    assert command == Record(output=str(engine.output), name="take-one", codec="mjpeg")
    assert link.command(command) is not None
    qtbot.waitUntil(lambda: panel.folder_label.text().endswith("take-one"))
    assert panel.state_label.text() == "Recording"
    qtbot.wait(1000)

    progress_shown: list[bool] = []  # connected after the panel: sees the bar as it left it
    link.assembly_progress.connect(
        lambda *_: progress_shown.append(not panel.progress.isHidden()))
    with qtbot.waitSignal(link.recording_finalized, timeout=30_000):
        assert link.command(Stop()) is not None
    assert progress_shown and all(progress_shown)
    assert panel.progress.isHidden()
    assert panel.state_label.text() == "Not recording"
    assert panel.folder_label.text() == "—"

    newest = panel.recent_recordings()[0]
    assert newest.folder == engine.output / "take-one"
    assert newest.status == "finalized"
    assert set(newest.frames) == {"left", "right"}
    assert len(set(newest.frames.values())) == 1 and newest.frames["left"] > 0
    item = panel.recent.topLevelItem(0)
    assert (item.text(0), item.text(1)) == ("take-one", "finalized")

    assert not panel.open_button.isEnabled()
    panel.recent.setCurrentItem(item)
    qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    assert opened == [engine.output / "take-one"]


@pytest.mark.timeout(120)
def test_recent_list_reads_the_recordings_already_there(qtbot, engine, link):
    first = record_briefly(link, "first")
    second = record_briefly(link, "second")
    (engine.output / "not-a-recording").mkdir()
    broken = engine.output / "broken"
    broken.mkdir()
    (broken / "recording.json").write_text("{")

    panel = recording_panel(qtbot, link, [])
    recent = panel.recent_recordings()
    assert [recording.folder for recording in recent] == [second, first]
    assert {recording.status for recording in recent} == {"finalized"}
    assert all(set(r.frames) == {"left", "right"} and r.frames["left"] > 0 for r in recent)
    item = panel.recent.topLevelItem(0)
    assert re.fullmatch(r"2 × \d+", item.text(2))  # a finished take: every camera alike
    assert re.fullmatch(r"left \d+, right \d+", item.toolTip(2))


@pytest.mark.timeout(120)
def test_figures_are_coloured_by_threshold(qtbot, link):
    panel = recording_panel(qtbot, link, [])

    def camera(camera_id: str, fps: float, dropped: int, status: str = "running") -> dict:
        return {"id": camera_id, "status": status, "frames": 1000, "dropped": dropped,
                "fps": fps, "writer_lag": 3, "target_fps": 30.0}

    panel.update_stats([
        camera("fine", 29.0, 10),  # 97 % of target; 1 % dropped is still fine
        camera("behind", 27.0, 20),  # 90 %; 2 %
        camera("stalling", 20.0, 60),  # 67 %; 6 %
        camera("paused", 0.0, 0, status="paused"),  # slow on purpose
    ], {"frame_sets": 30, "p50_ms": 0.5, "p99_ms": 1.25, "max_ms": 2.0})

    assert [cell(panel, row, 0) for row in range(4)] == ["fine", "behind", "stalling", "paused"]
    assert cell(panel, 1, FPS_COLUMN) == "27.0 / 30"
    assert [cell_colour(panel, row, FPS_COLUMN) for row in range(4)] == [
        None, WARNING, ALARM, None]
    assert [cell_colour(panel, row, DROPPED_COLUMN) for row in range(4)] == [
        None, WARNING, ALARM, None]
    assert panel.spread_label.text() == (
        "Sync spread: p50 0.50 ms · p99 1.25 ms · max 2.00 ms (the last 30 frame sets)")

    panel.update_stats([camera("fine", 10.0, 100)], None)
    assert panel.table.rowCount() == 1
    assert cell_colour(panel, 0, FPS_COLUMN) == ALARM
    panel.update_stats([camera("fine", 30.0, 0)], None)
    assert cell_colour(panel, 0, FPS_COLUMN) is None
    assert cell_colour(panel, 0, DROPPED_COLUMN) is None
    assert panel.spread_label.text() == "Sync spread: —"


def health_panel(qtbot, link: EngineLink) -> HealthPanel:
    panel = HealthPanel(link)
    qtbot.addWidget(panel)
    return panel


def fps_points(panel: HealthPanel) -> dict[str, int]:
    return {curve.name(): 0 if curve.getData()[1] is None else len(curve.getData()[1])
            for curve in panel.plot.getPlotItem().listDataItems()}


@pytest.mark.timeout(120)
def test_fps_history_fills_from_stats(qtbot, link):
    panel = health_panel(qtbot, link)
    qtbot.waitUntil(lambda: fps_points(panel).keys() == {"left", "right"}
                    and min(fps_points(panel).values()) >= 2, timeout=10_000)
    assert list(panel.camera_rows) == ["left", "right"]
    assert all(re.fullmatch(r"\d+ \(\d+\.\d %\)", row.dropped.text())
               for row in panel.camera_rows.values())


def line_colour(panel: HealthPanel, number: int) -> QColor:
    block = panel.log.document().findBlockByNumber(number)
    return block.begin().fragment().charFormat().foreground().color()


@pytest.mark.timeout(120)
def test_event_log(qtbot, link):
    panel = health_panel(qtbot, link)
    folder = record_briefly(link, "logged")
    qtbot.waitUntil(lambda: any("recording_finalized" in line for line in panel.log_lines()),
                    timeout=30_000)
    lines = panel.log_lines()
    # A take by its folder's name: the path would wrap the narrow log into pieces.
    assert any(re.fullmatch(rf"\d\d:\d\d:\d\d  recording_started  {re.escape(folder.name)}",
                            line) for line in lines)
    assert any(line.endswith(f"recording_finalized  {folder.name}  finalized") for line in lines)
    assert not [line for line in lines if " stats " in line or "assembly_progress" in line]
    assert all(line_colour(panel, number) != ALARM for number in range(len(lines)))

    assert link.command(Set(camera="nope", changes={"x": 1})) is None
    refused = panel.log_lines()[-1]
    assert refused.endswith("error  set: unknown camera 'nope'")
    assert line_colour(panel, len(panel.log_lines()) - 1) == ALARM

    # An engine error event reaches the panel twice (as `event` and as errorRaised): one line.
    link.dispatch(SensorError(sensor="imu", message="port vanished", time=time.time()))
    assert [line for line in panel.log_lines() if "port vanished" in line] == [
        panel.log_lines()[-1]]
    assert panel.log_lines()[-1].endswith("sensor_error  imu  port vanished")
    assert line_colour(panel, len(panel.log_lines()) - 1) == ALARM


@pytest.mark.timeout(120)
def test_event_log_keeps_the_newest_lines(qtbot, link):
    panel = health_panel(qtbot, link)
    for number in range(1100):
        link.anyEvent.emit(CameraLost(camera="a", message=f"number {number}"))
    lines = panel.log_lines()
    assert len(lines) == 1000
    assert lines[-1].endswith("number 1099")
    assert not any(line.endswith("number 99") for line in lines)
