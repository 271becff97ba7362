"""Exporting from the Recording panel's Recent recordings against a real engine: the
formats come from the engine, progress shows while it works, and the outcome names the
output (or says why there is none) without widening the panel's dock."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMenu

from engine.export import FORMATS
from engine.wire.commands import Record, Stop
from recorder_gui.engine_link import EngineLink
from recorder_gui.export_status import BREAK_HINT, format_title
from recorder_gui.recording_panel import RecordingPanel

pytestmark = [pytest.mark.usefixtures("no_leaked_widgets"), pytest.mark.timeout(120)]
DOCK_WIDTH = 460  # the Recording dock's width in the main window (at 1366x768 too)


@pytest.fixture
def panel(qtbot, link):
    opened: list[Path] = []
    panel = RecordingPanel(link, open_folder=opened.append)
    panel.opened = opened  # type: ignore[attr-defined]
    qtbot.addWidget(panel)
    panel.resize(DOCK_WIDTH, 740)
    panel.show()
    return panel


def record_take(qtbot, link: EngineLink, name: str) -> Path:
    result = link.command(Record(name=name))
    assert result is not None
    time.sleep(0.5)
    with qtbot.waitSignal(link.recording_finalized, timeout=30_000):
        assert link.command(Stop()) is not None
    return Path(result["folder"])


def select(panel: RecordingPanel, folder: Path) -> None:
    for row in range(panel.recent.topLevelItemCount()):
        item = panel.recent.topLevelItem(row)
        if item.data(0, Qt.ItemDataRole.UserRole).folder == folder:
            panel.recent.setCurrentItem(item)
            return
    raise AssertionError(f"{folder} is not in the recent list")


def export_action(panel: RecordingPanel, to: str):
    return next(a for a in panel.export_menu.actions() if a.data() == to)


def test_a_recent_recording_is_exported_with_progress_and_its_output_named(qtbot, link, panel):
    assert [a.data() for a in panel.export_menu.actions()] == list(FORMATS)
    assert [a.text() for a in panel.export_menu.actions()] == [format_title(f) for f in FORMATS]
    assert not panel.export_button.isEnabled()  # nothing selected
    folder = record_take(qtbot, link, "take")
    select(panel, folder)
    assert panel.export_button.isEnabled()

    with qtbot.waitSignal(link.export_finished, timeout=60_000) as finished:
        export_action(panel, "mkv").trigger()
        assert list(panel.exports.bars) == [(str(folder.resolve()), "mkv")]
        bar = next(iter(panel.exports.bars.values()))
        assert bar.isVisibleTo(panel) and bar.text() == "Exporting take to MKV: 0%"
    event = finished.args[0]
    assert event.error is None
    output = Path(event.output)
    assert output.exists()
    qtbot.waitUntil(lambda: not panel.exports.bars)
    outcome = panel.exports.outcome
    assert outcome.isVisibleTo(panel) and outcome.level == "info"
    assert panel.exports.message == f"Exported take to MKV: {output}"
    assert outcome.text.text().replace(BREAK_HINT, "") == panel.exports.message

    # The long path wraps inside the dock's width; all of it shows.
    QApplication.processEvents()
    assert panel.minimumSizeHint().width() <= DOCK_WIDTH
    label = outcome.text
    assert label.width() <= DOCK_WIDTH and label.heightForWidth(label.width()) <= label.height()

    qtbot.mouseClick(outcome.button("Open folder"), Qt.MouseButton.LeftButton)
    assert panel.opened == [output if output.is_dir() else output.parent]
    qtbot.mouseClick(outcome.button("Copy path"), Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == str(output)

    with qtbot.waitSignal(link.export_finished, timeout=60_000):  # fails: nothing overwritten
        export_action(panel, "mkv").trigger()
    qtbot.waitUntil(lambda: not panel.exports.bars)
    assert outcome.level == "error" and outcome.button("Open folder") is None
    assert panel.exports.message.startswith("Could not export take to MKV: ")
    assert panel.exports.message.endswith(f"{output} exists already: remove it, or export to "
                                          "another folder")


def test_the_context_menu_offers_the_exports_and_a_failure_is_shown(qtbot, link, panel,
                                                                    engine):
    folder = record_take(qtbot, link, "doomed")
    select(panel, folder)
    item = panel.recent.currentItem()
    panel._recent_menu(panel.recent.visualItemRect(item).center())
    menu = QApplication.activePopupWidget()
    try:
        assert isinstance(menu, QMenu)
        titles = [action.text() for action in menu.actions()]
        assert titles == ["Open folder", "Export to"]
        assert menu.actions()[1].menu() is panel.export_menu and menu.actions()[1].isEnabled()
    finally:
        menu.close()

    shutil.rmtree(folder)  # gone since the list was read: the engine refuses it at once
    export_action(panel, "nwb").trigger()
    assert not panel.exports.bars
    assert panel.exports.outcome.level == "error"
    assert panel.exports.message.startswith(
        f"Could not export doomed to NWB: export: no recording at {folder}")
