"""The GUI as a rig's coordinator (pytest-qt): three engine nodes on a real NATS server,
two free-running cameras each. The window shows all six cameras through the broker's
previews, records the rig with Record / Stop, and says what it saved."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.nodes.broker import BrokerError, BrokerLink
from engine.nodes.coordinator import RigCoordinator
from engine.nodes.preview import PreviewReceiver
from engine.wire.nodes import NodeStatus
from tests.rig_nodes import MS, RIG_ID, TOKEN, start_node
from tests.test_rig_take import relative_segments, rig_text


class Coordinators:
    """Rig windows on one broker link, each a coordinator of the rig."""

    def __init__(self, qtbot, broker_url: str, output: Path) -> None:
        self.qtbot, self.output = qtbot, output
        self.link = BrokerLink(broker_url, "test GUI", token=TOKEN)
        self.link.connect()
        self.previews = PreviewReceiver(self.link, RIG_ID, "test")

    def open(self):
        from recorder_gui.rig_window import RigWindow

        window = RigWindow(RigCoordinator(self.link, RIG_ID), self.previews, self.output)
        self.qtbot.addWidget(window)
        window.show()
        return window

    def close(self) -> None:
        self.previews.close()
        self.link.close()


@pytest.fixture
def coordinators(qtbot, tmp_path, broker):
    nodes = [start_node(tmp_path, name, broker.url, offset_ns=offset, rig_text=rig_text(name, seed))
             for name, offset, seed in (("a", 0, 1), ("b", 0, 3), ("c", 250 * MS, 5))]
    opened = None
    try:
        opened = Coordinators(qtbot, broker.url, tmp_path / "rig-takes")
        yield opened
    finally:
        if opened is not None:
            opened.close()
        for node in nodes:
            node.stop()


def test_the_rig_window_shows_every_node_camera_and_records_the_rig(qtbot, coordinators,
                                                                    tmp_path):
    window = coordinators.open()
    names = [f"{node}/{camera}" for node in "abc" for camera in ("left", "right")]
    qtbot.waitUntil(lambda: sorted(window.tiles) == names, timeout=30000)
    qtbot.waitUntil(lambda: all(not tile.no_signal for tile in window.tiles.values()),
                    timeout=30000)
    first = {name: tile.frame for name, tile in window.tiles.items()}
    qtbot.waitUntil(lambda: all(tile.frame > first[name] for name, tile
                                in window.tiles.items()), timeout=10000)  # live, not one picture
    assert window.nodes_table.rowCount() == 3
    # Node c's clock, 250 ms ahead, measured within the 2 ms a take asks of it.
    qtbot.waitUntil(lambda: window.nodes_table.item(2, 3).text()[:1] in "+-", timeout=30000)
    measured = window.nodes_table.item(2, 3).text()
    assert window.nodes_table.item(2, 0).text() == "c"
    assert abs(float(measured.split()[0]) - 250) < 2, measured
    assert "3 nodes, 6 cameras" in window.status.text()
    qtbot.waitUntil(lambda: "GB free" in window.nodes_table.item(0, 2).text(), timeout=10000)

    window.record_action.trigger()
    qtbot.waitUntil(lambda: window.recording, timeout=30000)
    assert "Recording rig take" in window.status.text()
    assert all(tile.badge()[0] == "● REC" for tile in window.tiles.values())
    assert not window.record_action.isEnabled() and window.stop_action.isEnabled()
    time.sleep(1.0)
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: window.paused and not window.busy, timeout=30000)
    assert all(tile.badge()[0] == "❚❚ PAUSED" for tile in window.tiles.values())
    assert window.pause_action.text() == "▶ Resume"
    time.sleep(1.0)
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: not window.paused and not window.busy, timeout=30000)
    assert all(tile.badge()[0] == "● REC" for tile in window.tiles.values())
    time.sleep(1.0)
    window.stop_action.trigger()
    # Not re-attached to the take it stopped, whose nodes' statuses say "recording" for a
    # few seconds more (it did in 2 runs of 5).
    qtbot.waitUntil(lambda: window.last_manifest is not None, timeout=60000)
    manifest = window.last_manifest
    assert manifest["status"] == "finished", window.status.text()
    frames = {camera["frames"] for entry in manifest["nodes"] for camera in entry["cameras"]}
    assert len(frames) == 1 and frames.pop() >= 40
    segments = {json.dumps(relative_segments(Path(entry["folder"])))
                for entry in manifest["nodes"]}
    assert len(segments) == 1, segments  # every node skipped the same sets of the take
    assert len(json.loads(segments.pop())) == 2
    assert window.status.text().startswith("Saved rig take")
    assert "6 cameras ×" in window.status.text()
    (folder,) = (tmp_path / "rig-takes").iterdir()
    assert json.loads((folder / "rig.json").read_text())["status"] == "finished"
    assert Path(folder / "sync_report.json").exists()
    assert window.record_action.isEnabled() and not window.stop_action.isEnabled()
    assert not any(tile.recording for tile in window.tiles.values())


@pytest.mark.slow  # a rig's take: .ci/run's slow step
def test_a_new_rig_window_re_attaches_to_a_take_another_one_left_running(qtbot, coordinators):
    first = coordinators.open()
    qtbot.waitUntil(lambda: len(first.tiles) == 6, timeout=30000)
    first.record_action.trigger()
    qtbot.waitUntil(lambda: first.recording, timeout=30000)
    first.close()  # the take runs on without its coordinator

    second = coordinators.open()
    qtbot.waitUntil(lambda: second.recording, timeout=10000)
    assert "(re-attached)" in second.status.text()
    assert second.stop_action.isEnabled() and not second.record_action.isEnabled()
    qtbot.waitUntil(lambda: all(tile.badge()[0] == "● REC" for tile in second.tiles.values())
                    and len(second.tiles) == 6, timeout=10000)
    time.sleep(1.0)
    second.stop_action.trigger()
    qtbot.waitUntil(lambda: second.last_manifest is not None, timeout=60000)
    assert second.last_manifest["status"] == "finished", second.status.text()
    frames = {camera["frames"] for entry in second.last_manifest["nodes"]
              for camera in entry["cameras"]}
    assert len(frames) == 1, frames


class NodeStillRecording:
    """A coordinator whose one node's status still names take t1, as it does for a few
    seconds after the take ended."""

    rig = RIG_ID

    def nodes(self, wait_s: float = 0, expect: int = 0) -> dict[str, NodeStatus]:
        return {"a": NodeStatus(node="a", version="test", pid=1, rig=RIG_ID, state="running",
                                recording={"folder": "/elsewhere/t1",
                                           "rig_take": {"take": "t1"}})}

    def clock(self, node: str):
        raise BrokerError("no clock here")


class NoPreviews:
    def latest(self, _name: str) -> None:
        return None


def test_the_window_re_attaches_only_to_a_take_still_recording(qtbot, tmp_path):
    from recorder_gui.rig_window import RigWindow

    folder = tmp_path / "t1"
    folder.mkdir()
    manifest = {"rig": RIG_ID, "status": "finished", "nodes": [], "pauses": []}
    (folder / "rig.json").write_text(json.dumps(manifest))
    window = RigWindow(NodeStillRecording(), NoPreviews(), tmp_path)
    qtbot.addWidget(window)
    assert window.take is None and not window.recording  # it ended: a stale status
    (folder / "rig.json").write_text(json.dumps({**manifest, "status": "recording"}))
    window._nodes_at = 0.0  # the next refresh asks the nodes again
    window._refresh()
    assert window.take is not None and window.recording
    assert "re-attached" in window.status.text()
