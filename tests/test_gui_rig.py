"""The GUI as a rig's coordinator (pytest-qt): three engine nodes on a real NATS server,
two free-running cameras each. The window shows all six cameras through the broker's
previews, records the rig with Record / Stop, and says what it saved."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.nodes.broker import BrokerLink
from engine.nodes.coordinator import RigCoordinator
from engine.nodes.preview import PreviewReceiver
from tests.rig_nodes import MS, RIG_ID, TOKEN, start_node
from tests.test_rig_take import rig_text


@pytest.fixture
def rig_window(qtbot, tmp_path, broker):
    from recorder_gui.rig_window import RigWindow

    nodes = [start_node(tmp_path, name, broker.url, offset_ns=offset, rig_text=rig_text(name, seed))
             for name, offset, seed in (("a", 0, 1), ("b", 0, 3), ("c", 250 * MS, 5))]
    link = BrokerLink(broker.url, "test GUI", token=TOKEN)
    previews = None
    try:
        link.connect()
        previews = PreviewReceiver(link, RIG_ID, "test")
        window = RigWindow(RigCoordinator(link, RIG_ID), previews, tmp_path / "rig-takes")
        qtbot.addWidget(window)
        window.show()
        yield window
        window.close()
    finally:
        if previews is not None:
            previews.close()
        link.close()
        for node in nodes:
            node.stop()


def test_the_rig_window_shows_every_node_camera_and_records_the_rig(qtbot, rig_window, tmp_path):
    window = rig_window
    names = [f"{node}/{camera}" for node in "abc" for camera in ("left", "right")]
    qtbot.waitUntil(lambda: sorted(window.tiles) == names, timeout=30000)
    qtbot.waitUntil(lambda: all(not tile.no_signal for tile in window.tiles.values()),
                    timeout=30000)
    first = {name: tile.frame for name, tile in window.tiles.items()}
    qtbot.waitUntil(lambda: all(tile.frame > first[name] for name, tile
                                in window.tiles.items()), timeout=10000)  # live, not one picture
    assert window.nodes_table.rowCount() == 3
    qtbot.waitUntil(lambda: "+250." in window.nodes_table.item(2, 2).text(), timeout=30000)
    assert "3 nodes, 6 cameras" in window.status.text()

    window.record_action.trigger()
    qtbot.waitUntil(lambda: window.recording, timeout=30000)
    assert "Recording rig take" in window.status.text()
    assert all(tile.badge()[0] == "● REC" for tile in window.tiles.values())
    assert not window.record_action.isEnabled() and window.stop_action.isEnabled()
    time.sleep(2.0)
    window.stop_action.trigger()
    qtbot.waitUntil(lambda: window.last_manifest is not None, timeout=60000)
    manifest = window.last_manifest
    assert manifest["status"] == "finished", window.status.text()
    frames = {camera["frames"] for entry in manifest["nodes"] for camera in entry["cameras"]}
    assert len(frames) == 1 and frames.pop() >= 60
    assert window.status.text().startswith("Saved rig take")
    assert "6 cameras ×" in window.status.text()
    (folder,) = (tmp_path / "rig-takes").iterdir()
    assert json.loads((folder / "rig.json").read_text())["status"] == "finished"
    assert Path(folder / "sync_report.json").exists()
    assert window.record_action.isEnabled() and not window.stop_action.isEnabled()
    assert not any(tile.recording for tile in window.tiles.values())
